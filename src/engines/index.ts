export {
  ENGINE_EVENT_TYPES,
  type AgentState,
  type Engine,
  type EngineCommand,
  type EngineEventType,
  type EngineParser,
  type EngineRunInput,
  type EngineSummary,
  type ParsedLine,
} from './engine.js';
export { ENGINES, ENGINE_NAMES, engineFor, type EngineName } from './registry.js';
export { claudeCode } from './claude-code.js';
export { codex } from './codex.js';
export { gemini } from './gemini.js';
export { pi, createPiParser, PI_READ_ONLY_TOOLS } from './pi.js';
export { shell, shellStderrEvent } from './shell.js';
export { probeEngine, which, type EngineProbe } from './probe.js';
