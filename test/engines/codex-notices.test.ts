import { describe, expect, it } from 'vitest';
import { createCodexParser } from '../../src/engines/codex.js';
import { ENGINE_EVENT_TYPES } from '../../src/engines/engine.js';

/** The notice as codex-cli 0.169.0 prints it (the text is in its binary), for a given model. */
const notice = (model: string) =>
  `Model metadata for \`${model}\` not found. Defaulting to fallback metadata; this can degrade performance and cause issues.`;
const item = (message: string) =>
  JSON.stringify({ type: 'item.completed', item: { id: 'item_0', type: 'error', message } });

describe('codex model metadata notice', () => {
  it.each(['gpt-5', 'gpt-5.1'])(
    'is a warning log line for %s, not an error, and the run still succeeds',
    (model) => {
      const parser = createCodexParser({ model });
      const lines = [
        '{"type":"thread.started","thread_id":"t-1"}',
        '{"type":"turn.started"}',
        item(notice(model)),
        '{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"done"}}',
        '{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":0,"output_tokens":2}}',
      ];
      const events = lines.flatMap((l) => parser.parse(l).events);
      expect(events.map((e) => e.type)).toEqual(['session', 'log', 'message', 'usage', 'result']);
      expect(events[1]).toEqual({
        type: 'log',
        data: {
          stream: 'stderr',
          line: notice(model),
          level: 'warning',
          code: 'model_metadata_fallback',
        },
      });
      for (const e of events) expect(ENGINE_EVENT_TYPES).toContain(e.type);
      expect(parser.summary()).toMatchObject({ ok: true, error: null });
    },
  );

  it('matches the shorter notice of older versions too', () => {
    const parser = createCodexParser();
    const older = 'Model metadata for `gpt-5-codex` not found. Defaulting to fallback metadata.';
    expect(parser.parse(item(older)).events[0]).toMatchObject({
      type: 'log',
      data: { level: 'warning', line: older },
    });
  });

  it('keeps any other error item an error, even one that mentions metadata', () => {
    const parser = createCodexParser();
    for (const message of [
      'Model metadata could not be loaded',
      `prefix: ${notice('gpt-5')}`,
      'sandbox denied the command',
    ])
      expect(parser.parse(item(message)).events).toEqual([{ type: 'error', data: { message } }]);
  });
});
