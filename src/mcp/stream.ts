// A tool call answered as a `text/event-stream` (DESIGN §11): its events are relayed to the caller
// as they come — progress, logging, server requests — until the JSON-RPC response with the call's
// id, which is held back (it is stored first, then sent) and ends the attempt. A stream that closes
// before it is a call with no answer: its outcome is unknown.
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { parse, stringify } from 'lossless-json';
import type { AnswerWatch, AttemptResult } from '../http/attempt.js';
import { firstHeader, type HeaderMap } from '../http/headers.js';

/** Where relayed events go: the caller's reply (proxy/render.ts writes it). */
export interface EventSink {
  /** One event, serialised; the first opens the caller's event stream. */
  event(text: string): void;
}

export function isEventStream(headers: HeaderMap): boolean {
  return /^text\/event-stream\b/i.test(firstHeader(headers['content-type']) ?? '');
}

/** An SSE event as sent on the wire: each data line prefixed, a blank line after. */
export function serializeEvent(data: string, event?: string, id?: string): string {
  const head = (event === undefined ? '' : `event: ${event}\n`) + (id === undefined ? '' : `id: ${id}\n`);
  return `${head}${data
    .split('\n')
    .map((line) => `data: ${line}`)
    .join('\n')}\n\n`;
}

/** Whether `data` is the JSON-RPC response to `idText` (a result or an error). */
function responseTo(data: string, idText: string): boolean {
  let message: unknown;
  try {
    message = parse(data);
  } catch {
    return false;
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) return false;
  const m = message as Record<string, unknown>;
  return ('result' in m || 'error' in m) && !('method' in m) && stringify(m['id']) === idText;
}

/**
 * A JSON answer to a tool call, read whole: a 4xx that holds no response to the call (a session
 * not found, a wrong Accept, a malformed message) is the server turning the request away before
 * the tool ran — released, passed back, never stored for replay (DESIGN §11).
 */
export function settleAnswer(result: AttemptResult, id: unknown): AttemptResult {
  if (result.kind !== 'answer' || result.status < 400 || result.status >= 500 || result.status === 429) return result;
  return responseTo(result.body.toString('utf8'), stringify(id) ?? '') ? result : { ...result, refused: true };
}

export function toolCallWatch(id: unknown, sink: EventSink): AnswerWatch {
  const idText = stringify(id) ?? '';
  const decoder = new TextDecoder();
  let response: string | null = null;
  const parser = createParser({
    onEvent: (ev: EventSourceMessage) => {
      if (response !== null) return;
      if (responseTo(ev.data, idText)) response = ev.data;
      else sink.event(serializeEvent(ev.data, ev.event, ev.id));
    },
  });
  return {
    start: (status, headers) => status === 200 && isEventStream(headers),
    chunk: (chunk) => {
      parser.feed(decoder.decode(chunk, { stream: true }));
      return response !== null;
    },
    finish: (status, headers): AttemptResult => {
      if (response === null) return { kind: 'no_answer', reason: 'stream_closed_before_the_response', timedOut: false };
      const { 'content-length': _length, ...rest } = headers;
      return { kind: 'answer', status, headers: { ...rest, 'content-type': 'application/json' }, body: Buffer.from(response, 'utf8') };
    },
  };
}
