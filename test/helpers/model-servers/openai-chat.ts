import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type Json,
  header,
  isRecord,
  listenLoopback,
  parseBody,
  readBody,
  type ScriptedRequest,
  type ScriptedServer,
  scriptedServer,
  scriptPlayer,
  sendJson,
} from './http.js';

/**
 * A scripted OpenAI Chat Completions API on 127.0.0.1, for running a real agent CLI (Pi, through
 * a `models.json` provider with `api: "openai-completions"`) against a model whose every answer
 * is known in advance.
 *
 * - `POST /v1/chat/completions` with `stream: true` → the next turn of the script as a
 *   Server-Sent Events stream of `chat.completion.chunk` objects (`data:` lines, no event names,
 *   ending with `data: [DONE]`): a first chunk with `role: "assistant"`; per text or reasoning
 *   part its text in two `content` (or `reasoning_content`) deltas; per tool call a delta with
 *   its `id`, `type` and `function.name` and then its JSON `arguments` in two pieces; a chunk with
 *   the `finish_reason` (`tool_calls` when the turn calls a tool, else `stop`); and, when the
 *   request asked for `stream_options.include_usage`, a last chunk with no choices and the fixed
 *   `SCRIPT_USAGE`.
 * - A script turn `{ status, message }` answers that request with that HTTP status and an
 *   OpenAI-shaped error body `{error: {message, type, code}}` instead (a failing API).
 * - Once the script is played out, each further request gets a text turn saying so (`overruns`
 *   counts them) rather than an error, so a CLI that asks once more than expected still ends.
 * - anything else → 404 `{error}` (recorded as `other`).
 *
 * Every request is recorded (method, url, a few headers, the JSON body), so a test can check
 * what the CLI sent back (`tool` messages in the next request's `messages`).
 */

/** One part of a scripted model turn. */
export type ScriptPart =
  | { type: 'text'; text: string }
  /** Sent as `delta.reasoning_content`, as llama.cpp, DeepSeek and others stream reasoning. */
  | { type: 'reasoning'; text: string }
  | {
      type: 'tool_call';
      /** A tool the CLI declares in its request's `tools`, e.g. Pi's `write` or `bash`. */
      name: string;
      /** Sent as the JSON string `function.arguments`, as the real API does. */
      arguments: Record<string, unknown>;
      /** Defaults to `call_script_<turn>_<part>`. */
      id?: string;
    };

/** A turn that fails: the request is answered with this HTTP status and message. */
export interface ScriptFailure {
  status: number;
  message: string;
}

/** One model request's answer: the parts of a streamed completion, or a failure. */
export type ScriptTurn = ScriptPart[] | ScriptFailure;

/** The script: one turn per model request, in order. */
export type Script = ScriptTurn[];

/**
 * The usage every scripted turn reports in its last chunk. As in the Chat Completions API,
 * `prompt_tokens` includes the cached tokens and `completion_tokens` the reasoning tokens.
 */
export const SCRIPT_USAGE = {
  prompt_tokens: 1000,
  completion_tokens: 50,
  total_tokens: 1050,
  prompt_tokens_details: { cached_tokens: 400 },
  completion_tokens_details: { reasoning_tokens: 20 },
} as const;

export interface RecordedRequest extends ScriptedRequest {
  headers: { userAgent?: string; authorization?: string };
  handled: 'turn' | 'overrun' | 'other';
}

export interface OpenAIChatServer extends ScriptedServer<RecordedRequest> {
  /** `http://127.0.0.1:PORT/v1`, for a provider's `baseUrl`. */
  baseUrl: string;
}

/** A text in two pieces (one piece when it is a single character), to exercise delta joining. */
function halves(text: string): string[] {
  const mid = Math.ceil(text.length / 2);
  return text.length < 2 ? [text] : [text.slice(0, mid), text.slice(mid)];
}

/** The chunks of one streamed model turn (without the usage chunk). */
function turnChunks(
  parts: ScriptPart[],
  turn: number,
  completionId: string,
  model: string,
): Json[] {
  const base = {
    id: completionId,
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model,
  };
  const chunk = (delta: Json, finishReason: string | null = null): Json => ({
    ...base,
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  });
  const chunks: Json[] = [chunk({ role: 'assistant', content: '' })];
  let toolIndex = 0;
  parts.forEach((part, index) => {
    switch (part.type) {
      case 'text':
        for (const piece of halves(part.text)) chunks.push(chunk({ content: piece }));
        break;
      case 'reasoning':
        for (const piece of halves(part.text)) chunks.push(chunk({ reasoning_content: piece }));
        break;
      case 'tool_call': {
        const i = toolIndex++;
        chunks.push(
          chunk({
            tool_calls: [
              {
                index: i,
                id: part.id ?? `call_script_${turn}_${index}`,
                type: 'function',
                function: { name: part.name, arguments: '' },
              },
            ],
          }),
        );
        for (const piece of halves(JSON.stringify(part.arguments)))
          chunks.push(chunk({ tool_calls: [{ index: i, function: { arguments: piece } }] }));
        break;
      }
    }
  });
  chunks.push(chunk({}, toolIndex > 0 ? 'tool_calls' : 'stop'));
  return chunks;
}

/** Answers with a Chat Completions SSE stream: one `data:` line per chunk, then `[DONE]`. */
function sendChunks(res: ServerResponse, chunks: Json[]): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  for (const c of chunks) res.write(`data: ${JSON.stringify(c)}\n\n`);
  res.write('data: [DONE]\n\n');
  res.end();
}

/** Starts the server on 127.0.0.1 with an OS-chosen port. */
export async function startOpenAIChatServer(script: Script): Promise<OpenAIChatServer> {
  const requests: RecordedRequest[] = [];
  const over: ScriptTurn = [{ type: 'text', text: 'The script has no more turns.' }];
  const player = scriptPlayer(script, over);
  let completions = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseBody(await readBody(req));
    const url = req.url ?? '/';
    const path = url.split('?')[0];
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      url,
      headers: {},
      body,
      handled: 'other',
    };
    const ua = header(req, 'user-agent');
    if (ua !== undefined) recorded.headers.userAgent = ua;
    const authorization = header(req, 'authorization');
    if (authorization !== undefined) recorded.headers.authorization = authorization;
    requests.push(recorded);

    if (req.method === 'POST' && path === '/v1/chat/completions') {
      const model = isRecord(body) && typeof body.model === 'string' ? body.model : 'scripted';
      const { turn, content } = player.next(recorded);
      if (!Array.isArray(content)) {
        sendJson(res, content.status, {
          error: { message: content.message, type: 'server_error', code: null },
        });
        return;
      }
      const chunks = turnChunks(content, turn, `chatcmpl-script-${++completions}`, model);
      const options = isRecord(body) && isRecord(body.stream_options) ? body.stream_options : {};
      if (options.include_usage === true)
        chunks.push({ ...chunks[0], choices: [], usage: SCRIPT_USAGE });
      sendChunks(res, chunks);
      return;
    }
    sendJson(res, 404, {
      error: { message: `not scripted: ${req.method} ${path}`, type: 'invalid_request_error' },
    });
  }

  const listening = await listenLoopback(handle, (err) => ({
    error: { message: String(err), type: 'invalid_request_error' },
  }));
  return Object.assign(scriptedServer(requests, player, listening), {
    baseUrl: `http://127.0.0.1:${listening.port}/v1`,
  });
}

/** The `messages` a recorded request sent (empty when it sent none). */
export function messagesSent(body: unknown): Json[] {
  return isRecord(body) && Array.isArray(body.messages) ? body.messages.filter(isRecord) : [];
}

/** The names of the tools a recorded request declared. */
export function toolNames(body: unknown): string[] {
  if (!isRecord(body) || !Array.isArray(body.tools)) return [];
  return body.tools
    .map((t) => (isRecord(t) && isRecord(t.function) ? t.function.name : undefined))
    .filter((n): n is string => typeof n === 'string');
}
