/**
 * nspod error codes → gRPC status codes, in this one place. Every handler goes through `unary`
 * (or `serverStream`), which also logs the call when NSPOD_CRI_DEBUG is set.
 */
import * as grpc from '@grpc/grpc-js';
import { NspodError, messageOf } from '../errors/index.js';
import type { ErrorCode } from '../errors/index.js';

export const GRPC_CODES: Record<ErrorCode, grpc.status> = {
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  INTERNAL: grpc.status.INTERNAL,
};

/** An error that carries a gRPC code nspod's codes don't have (DEADLINE_EXCEEDED, UNIMPLEMENTED). */
export class GrpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

export function toServiceError(e: unknown): Partial<grpc.StatusObject> {
  if (e instanceof GrpcError) return { code: e.code, details: e.message };
  if (e instanceof NspodError) return { code: GRPC_CODES[e.code], details: e.message.split('\n')[0] ?? '' };
  return { code: grpc.status.INTERNAL, details: messageOf(e).split('\n')[0] ?? '' };
}

const debug = process.env.NSPOD_CRI_DEBUG !== undefined && process.env.NSPOD_CRI_DEBUG !== '';

export function unary<Req, Res>(name: string, fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, cb) => {
    const t = performance.now();
    fn(call.request).then(
      (res) => {
        if (debug) process.stderr.write(`cri: ${name} ok ${(performance.now() - t).toFixed(1)}ms\n`);
        cb(null, res);
      },
      (e: unknown) => {
        const st = toServiceError(e);
        if (debug) process.stderr.write(`cri: ${name} error ${st.code}: ${st.details}\n`);
        cb(st);
      },
    );
  };
}

/** A server-streaming handler that sends what `fn` yields, then ends. */
export function serverStream<Req, Res>(
  name: string,
  fn: (req: Req, call: grpc.ServerWritableStream<Req, Res>) => AsyncIterable<Res>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    void (async () => {
      try {
        for await (const r of fn(call.request, call)) {
          if (call.cancelled) return;
          call.write(r);
        }
        call.end();
      } catch (e) {
        const st = toServiceError(e);
        if (debug) process.stderr.write(`cri: ${name} error ${st.code}: ${st.details}\n`);
        call.emit('error', st);
      }
    })();
  };
}

export function unimplemented(what: string): never {
  throw new GrpcError(grpc.status.UNIMPLEMENTED, `${what} is not implemented by nspod`);
}
