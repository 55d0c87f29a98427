/**
 * A Server-Sent Events parser following the WHATWG "event stream interpretation": lines end in
 * CRLF, LF or CR; a blank line dispatches; `:` starts a comment; `data` lines join with "\n";
 * an event without data is not dispatched; an unfinished event at the end of the stream is
 * dropped (it may be cut short, and the reconnect will send it again).
 */

export interface SseMessage {
  /** The `event:` field, "message" when absent. */
  event: string;
  data: string;
  /** The last `id:` seen on the stream so far (it carries over, as in the spec), or "". */
  id: string;
}

export class SseParser {
  private buffer = '';
  private started = false;
  private event = '';
  private data: string[] = [];
  private lastId = '';
  private retry: number | undefined;
  private readonly decoder = new TextDecoder('utf-8');

  /** Feeds bytes (any split, even inside a character or a CRLF); returns events completed. */
  push(chunk: Uint8Array): SseMessage[] {
    return this.feed(this.decoder.decode(chunk, { stream: true }), false);
  }

  /** The stream ended: returns events completed by the last bytes; a partial event is dropped. */
  end(): SseMessage[] {
    return this.feed(this.decoder.decode(), true);
  }

  /** The last event id seen, which a reconnect sends as `Last-Event-ID`. */
  get lastEventId(): string {
    return this.lastId;
  }

  /** The reconnection delay the server asked for with `retry:`, if it did. */
  get retryMs(): number | undefined {
    return this.retry;
  }

  private feed(text: string, final: boolean): SseMessage[] {
    this.buffer += text;
    if (!this.started && this.buffer.length > 0) {
      if (this.buffer.charCodeAt(0) === 0xfeff) this.buffer = this.buffer.slice(1);
      this.started = this.buffer.length > 0;
    }
    const out: SseMessage[] = [];
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf('\r', start);
      const lf = this.buffer.indexOf('\n', start);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) break;
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (end === cr && cr === this.buffer.length - 1 && !final) break;
      const next = end === cr && this.buffer[cr + 1] === '\n' ? cr + 2 : end + 1;
      const message = this.line(this.buffer.slice(start, end));
      if (message !== null) out.push(message);
      start = next;
    }
    this.buffer = this.buffer.slice(start);
    if (final) {
      this.buffer = '';
      this.reset();
    }
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
    return null;
  }

  private dispatch(): SseMessage | null {
    const message: SseMessage | null =
      this.data.length === 0
        ? null
        : {
            event: this.event === '' ? 'message' : this.event,
            data: this.data.join('\n'),
            id: this.lastId,
          };
    this.reset();
    return message;
  }

  private reset(): void {
    this.event = '';
    this.data = [];
  }
}
