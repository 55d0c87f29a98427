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
  sendEvents,
  sendJson,
} from './http.js';

/**
 * A scripted Anthropic Messages API on 127.0.0.1, for running a real agent CLI (Claude Code)
 * against a model whose every answer is known in advance.
 *
 * - `HEAD /` (the CLI's connectivity check) → 200.
 * - `POST /v1/messages` (with or without `?beta=true`) with `stream: true` → the next turn of
 *   the script as a Server-Sent Events stream: `message_start` (with usage), per block
 *   `content_block_start` / `content_block_delta` / `content_block_stop`, `message_delta` (stop
 *   reason and the final output count), `message_stop`. The stop reason is `tool_use` when the
 *   turn has a tool_use block, else `end_turn`. Once the script is played out, each further
 *   request gets a text turn saying so (`overruns` counts them) rather than an error, so a CLI
 *   that asks once more than expected still ends instead of retrying.
 * - `POST /v1/messages` without `stream` (a side query) → one non-streaming text message.
 * - `POST /v1/messages/count_tokens` → `{input_tokens: 0}`.
 * - anything else (telemetry, …) → 200 `{}`.
 *
 * Every request is recorded (method, url, a few headers, the JSON body when there is one), so a
 * test can check what the CLI sent back (tool results). Every scripted turn reports the same
 * fixed usage, `SCRIPT_USAGE`, so a test can work out the token totals.
 */

/** One content block of a scripted model turn. */
export type ScriptBlock =
  | { type: 'text'; text: string }
  | { type: 'thinking'; thinking: string }
  | {
      type: 'tool_use';
      name: string;
      input: Record<string, unknown>;
      /** Defaults to `toolu_script_<turn>_<block>`. */
      id?: string;
    };

/** The script: one list of blocks per model request, in order. */
export type Script = ScriptBlock[][];

/**
 * The usage every scripted turn reports: `message_start` carries the input counts and
 * `output_tokens: 1` (as the real API does), `message_delta` the final `output_tokens`.
 */
export const SCRIPT_USAGE = {
  input_tokens: 1000,
  cache_creation_input_tokens: 200,
  cache_read_input_tokens: 3000,
  output_tokens: 50,
} as const;

export interface RecordedRequest extends ScriptedRequest {
  headers: {
    userAgent?: string;
    anthropicBeta?: string;
    anthropicVersion?: string;
    apiKeySet: boolean;
  };
  handled: 'head' | 'turn' | 'overrun' | 'side-query' | 'count-tokens' | 'other';
}

export interface AnthropicServer extends ScriptedServer<RecordedRequest> {
  /** `http://127.0.0.1:PORT`, for `ANTHROPIC_BASE_URL`. */
  url: string;
}

/** The SSE events of one model turn. */
function turnEvents(blocks: ScriptBlock[], turn: number, messageId: string, model: string): Json[] {
  const events: Json[] = [
    {
      type: 'message_start',
      message: {
        id: messageId,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...SCRIPT_USAGE, output_tokens: 1 },
      },
    },
  ];
  blocks.forEach((block, index) => {
    switch (block.type) {
      case 'text':
        events.push(
          { type: 'content_block_start', index, content_block: { type: 'text', text: '' } },
          { type: 'content_block_delta', index, delta: { type: 'text_delta', text: block.text } },
        );
        break;
      case 'thinking':
        events.push(
          {
            type: 'content_block_start',
            index,
            content_block: { type: 'thinking', thinking: '', signature: '' },
          },
          {
            type: 'content_block_delta',
            index,
            delta: { type: 'thinking_delta', thinking: block.thinking },
          },
          {
            type: 'content_block_delta',
            index,
            delta: { type: 'signature_delta', signature: 'script-signature' },
          },
        );
        break;
      case 'tool_use':
        events.push(
          {
            type: 'content_block_start',
            index,
            content_block: {
              type: 'tool_use',
              id: block.id ?? `toolu_script_${turn}_${index}`,
              name: block.name,
              input: {},
            },
          },
          {
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.input) },
          },
        );
        break;
    }
    events.push({ type: 'content_block_stop', index });
  });
  const stopReason = blocks.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn';
  events.push(
    {
      type: 'message_delta',
      delta: { stop_reason: stopReason, stop_sequence: null },
      usage: { output_tokens: SCRIPT_USAGE.output_tokens },
    },
    { type: 'message_stop' },
  );
  return events;
}

/** Starts the server on 127.0.0.1 with an OS-chosen port. */
export async function startAnthropicServer(script: Script): Promise<AnthropicServer> {
  const requests: RecordedRequest[] = [];
  const over: ScriptBlock[] = [{ type: 'text', text: 'The script has no more turns.' }];
  const player = scriptPlayer(script, over);
  let messages = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    const body = parseBody(text);
    const url = req.url ?? '/';
    const path = url.split('?')[0];
    const apiKey = header(req, 'x-api-key') ?? header(req, 'authorization');
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      url,
      headers: { apiKeySet: apiKey !== undefined && apiKey !== '' },
      body,
      handled: 'other',
    };
    const ua = header(req, 'user-agent');
    if (ua !== undefined) recorded.headers.userAgent = ua;
    const beta = header(req, 'anthropic-beta');
    if (beta !== undefined) recorded.headers.anthropicBeta = beta;
    const version = header(req, 'anthropic-version');
    if (version !== undefined) recorded.headers.anthropicVersion = version;
    requests.push(recorded);

    if (req.method === 'HEAD') {
      recorded.handled = 'head';
      res.writeHead(200).end();
      return;
    }
    if (req.method === 'POST' && path === '/v1/messages/count_tokens') {
      recorded.handled = 'count-tokens';
      sendJson(res, 200, { input_tokens: 0 });
      return;
    }
    if (req.method === 'POST' && path === '/v1/messages') {
      const model = isRecord(body) && typeof body.model === 'string' ? body.model : 'scripted';
      const messageId = `msg_script_${++messages}`;
      if (!isRecord(body) || body.stream !== true) {
        recorded.handled = 'side-query';
        sendJson(res, 200, {
          id: messageId,
          type: 'message',
          role: 'assistant',
          model,
          content: [{ type: 'text', text: 'ok' }],
          stop_reason: 'end_turn',
          stop_sequence: null,
          usage: { input_tokens: 0, output_tokens: 0 },
        });
        return;
      }
      const { turn, content: blocks } = player.next(recorded);
      sendEvents(res, turnEvents(blocks, turn, messageId, model));
      return;
    }
    sendJson(res, 200, {});
  }

  const listening = await listenLoopback(handle, (err) => ({
    type: 'error',
    error: { message: String(err) },
  }));
  return Object.assign(scriptedServer(requests, player, listening), {
    url: `http://127.0.0.1:${listening.port}`,
  });
}
