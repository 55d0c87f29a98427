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
 * A scripted Gemini API (Generative Language API, `v1beta`) on 127.0.0.1, for running a real
 * agent CLI (Gemini CLI, pointed at it with `GOOGLE_GEMINI_BASE_URL`) against a model whose every
 * answer is known in advance.
 *
 * - `POST /v1beta/models/MODEL:streamGenerateContent?alt=sse` → the next turn of the script as a
 *   Server-Sent Events stream of `GenerateContentResponse` chunks, each a bare `data: {json}`
 *   event (no event names, as the real API sends them): one chunk per part, the last one with
 *   `finishReason: "STOP"`. Every chunk carries `usageMetadata`; the earlier ones report the
 *   prompt only, the last one the turn's full `SCRIPT_USAGE` (so a client that added chunks up
 *   instead of taking the last would be caught). Once the script is played out, each further
 *   request gets a text turn saying so (`overruns` counts them) rather than an error, so a CLI
 *   that asks once more than expected still ends instead of retrying.
 * - anything else → 404 with the API's error shape `{error: {code, message, status}}`, recorded
 *   as `other` (Gemini CLI 0.61.0 with `-m` was not seen to send anything else; without `-m` it
 *   first asks a router model with `:generateContent`).
 *
 * Every request is recorded (method, url, a few headers, the JSON body), so a test can check
 * what the CLI sent back (`functionResponse` parts in the next request's `contents`).
 */

/** One part of a scripted model turn. */
export type ScriptPart =
  | { type: 'text'; text: string }
  | {
      type: 'functionCall';
      /** A tool the CLI declares in its request's `tools`, e.g. Gemini CLI's `write_file`. */
      name: string;
      args: Record<string, unknown>;
      /** The call's `id`; the real Gemini API sends none, and then the CLI makes one up. */
      id?: string;
    };

/** The script: one list of parts per model request, in order. */
export type Script = ScriptPart[][];

/**
 * The usage every scripted turn reports in its last chunk. As in the Gemini API,
 * `promptTokenCount` includes `cachedContentTokenCount`, and `totalTokenCount` is prompt +
 * candidates + thoughts.
 */
export const SCRIPT_USAGE = {
  promptTokenCount: 1000,
  cachedContentTokenCount: 400,
  candidatesTokenCount: 50,
  thoughtsTokenCount: 20,
  totalTokenCount: 1070,
} as const;

export interface RecordedRequest extends ScriptedRequest {
  headers: { userAgent?: string; apiKey?: string; apiClient?: string };
  handled: 'turn' | 'overrun' | 'other';
}

export interface GeminiServer extends ScriptedServer<RecordedRequest> {
  /** `http://127.0.0.1:PORT`, for `GOOGLE_GEMINI_BASE_URL` (the client adds `/v1beta/…`). */
  baseUrl: string;
}

/** `/v1beta/models/MODEL:streamGenerateContent` → MODEL; undefined for any other path. */
function streamedModel(path: string): string | undefined {
  return /^\/v1beta\/models\/([^/:]+):streamGenerateContent$/.exec(path)?.[1];
}

function apiPart(part: ScriptPart): Json {
  if (part.type === 'text') return { text: part.text };
  const call: Json = { name: part.name, args: part.args };
  if (part.id !== undefined) call.id = part.id;
  return { functionCall: call };
}

/** The `GenerateContentResponse` chunks of one model turn: one per part. */
function turnChunks(parts: ScriptPart[], model: string, responseId: string): Json[] {
  const promptOnly = {
    promptTokenCount: SCRIPT_USAGE.promptTokenCount,
    cachedContentTokenCount: SCRIPT_USAGE.cachedContentTokenCount,
    totalTokenCount: SCRIPT_USAGE.promptTokenCount,
  };
  return parts.map((part, i) => {
    const last = i === parts.length - 1;
    const candidate: Json = { content: { role: 'model', parts: [apiPart(part)] }, index: 0 };
    if (last) candidate.finishReason = 'STOP';
    return {
      candidates: [candidate],
      usageMetadata: last ? SCRIPT_USAGE : promptOnly,
      modelVersion: model,
      responseId,
    };
  });
}

/** Answers with the chunks as an SSE stream (`data: …` and a blank line each), then ends it. */
function sendChunks(res: ServerResponse, chunks: Json[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const chunk of chunks) res.write(`data: ${JSON.stringify(chunk)}\r\n\r\n`);
  res.end();
}

function record(req: IncomingMessage, body: unknown): RecordedRequest {
  const recorded: RecordedRequest = {
    method: req.method ?? '',
    url: req.url ?? '/',
    headers: {},
    body,
    handled: 'other',
  };
  const ua = header(req, 'user-agent');
  if (ua !== undefined) recorded.headers.userAgent = ua;
  const apiKey = header(req, 'x-goog-api-key');
  if (apiKey !== undefined) recorded.headers.apiKey = apiKey;
  const apiClient = header(req, 'x-goog-api-client');
  if (apiClient !== undefined) recorded.headers.apiClient = apiClient;
  return recorded;
}

/** Starts the server on 127.0.0.1 with an OS-chosen port. */
export async function startGeminiServer(script: Script): Promise<GeminiServer> {
  const requests: RecordedRequest[] = [];
  const over: ScriptPart[] = [{ type: 'text', text: 'The script has no more turns.' }];
  const player = scriptPlayer(script, over);
  let responses = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const recorded = record(req, parseBody(await readBody(req)));
    requests.push(recorded);
    const path = recorded.url.split('?')[0] ?? '';
    const model = req.method === 'POST' ? streamedModel(path) : undefined;
    if (model === undefined) {
      const message = `not scripted: ${recorded.method} ${path}`;
      sendJson(res, 404, { error: { code: 404, message, status: 'NOT_FOUND' } });
      return;
    }
    const responseId = `resp_script_${++responses}`;
    const { content: parts } = player.next(recorded);
    sendChunks(res, turnChunks(parts, model, responseId));
  }

  const listening = await listenLoopback(handle, (err) => ({
    error: { code: 400, message: String(err), status: 'INVALID_ARGUMENT' },
  }));
  return Object.assign(scriptedServer(requests, player, listening), {
    baseUrl: `http://127.0.0.1:${listening.port}`,
  });
}

/** The `parts` of every `contents` entry of a recorded request body, in order. */
export function partsSent(body: unknown): Json[] {
  const contents = isRecord(body) && Array.isArray(body.contents) ? body.contents : [];
  return contents.flatMap((c: unknown) =>
    isRecord(c) && Array.isArray(c.parts) ? c.parts.filter(isRecord) : [],
  );
}

/** The names of the functions a recorded request body declares in `tools`. */
export function toolNames(body: unknown): string[] {
  const tools = isRecord(body) && Array.isArray(body.tools) ? body.tools : [];
  return tools.flatMap((t: unknown) =>
    isRecord(t) && Array.isArray(t.functionDeclarations)
      ? t.functionDeclarations.flatMap((f: unknown) =>
          isRecord(f) && typeof f.name === 'string' ? [f.name] : [],
        )
      : [],
  );
}
