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
 * A scripted OpenAI Responses API on 127.0.0.1, for running a real agent CLI (Codex) against a
 * model whose every answer is known in advance.
 *
 * - `POST /v1/responses` (always streamed by Codex) → the next turn of the script as a
 *   Server-Sent Events stream: `response.created`; per output item `response.output_item.added`,
 *   for a message `response.output_text.delta` (the whole text at once), and
 *   `response.output_item.done` with the finished item; then `response.completed` with the fixed
 *   `SCRIPT_USAGE`. Once the script is played out, each further request gets a message turn
 *   saying so (`overruns` counts them) rather than an error, so a CLI that asks once more than
 *   expected still ends instead of retrying.
 * - anything else → 404 `{error}` (recorded as `other`; Codex 0.169.0 was not seen to send any).
 *
 * Every request is recorded (method, url, a few headers, the JSON body), so a test can check
 * what the CLI sent back (`function_call_output` items in the next request's `input`).
 */

/** One output item of a scripted model turn. */
export type ScriptItem =
  | { type: 'message'; text: string }
  | { type: 'reasoning'; summary: string }
  | {
      type: 'function_call';
      /** A tool the CLI declares in its request's `tools`, e.g. Codex's `exec_command`. */
      name: string;
      /** Sent as the JSON string `arguments`, as the real API does. */
      arguments: Record<string, unknown>;
      /** Defaults to `call_script_<turn>_<item>`. */
      callId?: string;
    };

/** The script: one list of output items per model request, in order. */
export type Script = ScriptItem[][];

/**
 * The usage every scripted turn reports in `response.completed`. As in the Responses API,
 * `input_tokens` includes the cached tokens and `output_tokens` the reasoning tokens.
 */
export const SCRIPT_USAGE = {
  input_tokens: 1000,
  input_tokens_details: { cached_tokens: 400 },
  output_tokens: 50,
  output_tokens_details: { reasoning_tokens: 20 },
  total_tokens: 1050,
} as const;

export interface RecordedRequest extends ScriptedRequest {
  headers: { userAgent?: string; originator?: string; authorization?: string };
  handled: 'turn' | 'overrun' | 'other';
}

export interface OpenAIResponsesServer extends ScriptedServer<RecordedRequest> {
  /** `http://127.0.0.1:PORT/v1`, for a provider's `base_url`. */
  baseUrl: string;
}

/** The finished output item for a script item (without `id` for function calls' call id). */
function outputItem(item: ScriptItem, turn: number, index: number, id: string): Json {
  switch (item.type) {
    case 'message':
      return {
        type: 'message',
        id,
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: item.text, annotations: [] }],
      };
    case 'reasoning':
      return {
        type: 'reasoning',
        id,
        summary: [{ type: 'summary_text', text: item.summary }],
      };
    case 'function_call':
      return {
        type: 'function_call',
        id,
        status: 'completed',
        name: item.name,
        arguments: JSON.stringify(item.arguments),
        call_id: item.callId ?? `call_script_${turn}_${index}`,
      };
  }
}

/** The SSE events of one model turn. */
function turnEvents(items: ScriptItem[], turn: number, responseId: string, model: string): Json[] {
  const response = { id: responseId, object: 'response', model, status: 'in_progress' };
  const events: Json[] = [{ type: 'response.created', response: { ...response, output: [] } }];
  const output: Json[] = [];
  items.forEach((item, index) => {
    const id = `${item.type === 'function_call' ? 'fc' : item.type === 'message' ? 'msg' : 'rs'}_script_${turn}_${index}`;
    const done = outputItem(item, turn, index, id);
    const added: Json =
      item.type === 'message'
        ? { ...done, status: 'in_progress', content: [] }
        : item.type === 'function_call'
          ? { ...done, status: 'in_progress', arguments: '' }
          : { ...done, summary: [] };
    events.push({ type: 'response.output_item.added', output_index: index, item: added });
    if (item.type === 'message') {
      events.push({
        type: 'response.output_text.delta',
        item_id: id,
        output_index: index,
        content_index: 0,
        delta: item.text,
      });
    }
    if (item.type === 'reasoning') {
      events.push({
        type: 'response.reasoning_summary_text.delta',
        item_id: id,
        output_index: index,
        summary_index: 0,
        delta: item.summary,
      });
    }
    events.push({ type: 'response.output_item.done', output_index: index, item: done });
    output.push(done);
  });
  events.push({
    type: 'response.completed',
    response: { ...response, status: 'completed', output, usage: SCRIPT_USAGE },
  });
  return events;
}

/** The Responses API numbers the events of a stream. */
function numbered(events: Json[]): Json[] {
  return events.map((event, i) => ({ ...event, sequence_number: i }));
}

/** Starts the server on 127.0.0.1 with an OS-chosen port. */
export async function startOpenAIResponsesServer(script: Script): Promise<OpenAIResponsesServer> {
  const requests: RecordedRequest[] = [];
  const over: ScriptItem[] = [{ type: 'message', text: 'The script has no more turns.' }];
  const player = scriptPlayer(script, over);
  let responses = 0;

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
    const originator = header(req, 'originator');
    if (originator !== undefined) recorded.headers.originator = originator;
    const authorization = header(req, 'authorization');
    if (authorization !== undefined) recorded.headers.authorization = authorization;
    requests.push(recorded);

    if (req.method === 'POST' && path === '/v1/responses') {
      const model = isRecord(body) && typeof body.model === 'string' ? body.model : 'scripted';
      const responseId = `resp_script_${++responses}`;
      const { turn, content: items } = player.next(recorded);
      sendEvents(res, numbered(turnEvents(items, turn, responseId, model)));
      return;
    }
    sendJson(res, 404, { error: { message: `not scripted: ${req.method} ${path}` } });
  }

  const listening = await listenLoopback(handle, (err) => ({
    error: { message: String(err) },
  }));
  return Object.assign(scriptedServer(requests, player, listening), {
    baseUrl: `http://127.0.0.1:${listening.port}/v1`,
  });
}
