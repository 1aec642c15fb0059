/**
 * The part of undici the registry client uses: `Agent` and the `request` API. undici's index
 * loads fetch, WebSocket, caches and mocks too (≈ 0.4 s on a small machine, on every pull); the
 * two modules needed are loaded directly, and the index is the fallback should undici move them.
 */
import { createRequire } from 'node:module';
import type * as UndiciModule from 'undici';
import type { Agent as AgentType, Dispatcher } from 'undici';

const require = createRequire(import.meta.url);

type RequestFn = (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

interface Undici {
  Agent: typeof AgentType;
  request: RequestFn;
}

function load(): Undici {
  try {
    return {
      Agent: require('undici/lib/dispatcher/agent.js') as typeof AgentType,
      request: require('undici/lib/api/api-request.js') as RequestFn,
    };
  } catch {
    const u = require('undici') as typeof UndiciModule;
    return {
      Agent: u.Agent,
      request: function (this: Dispatcher, opts: Dispatcher.RequestOptions) {
        return this.request(opts);
      },
    };
  }
}

let loaded: Undici | undefined;
const undici = (): Undici => (loaded ??= load());

export type { Dispatcher };
export type Agent = AgentType;

export function newAgent(opts: ConstructorParameters<typeof AgentType>[0]): AgentType {
  return new (undici().Agent)(opts);
}

export interface HttpRequestOptions {
  method: Dispatcher.HttpMethod;
  headers?: Record<string, string>;
  body?: Dispatcher.DispatchOptions['body'];
  dispatcher: Dispatcher;
}

/** undici's `request(url, opts)` on the given dispatcher. */
export function httpRequest(url: string | URL, o: HttpRequestOptions): Promise<Dispatcher.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  return undici().request.call(o.dispatcher, {
    origin: u.origin,
    path: `${u.pathname}${u.search}`,
    method: o.method,
    ...(o.headers ? { headers: o.headers } : {}),
    ...(o.body !== undefined ? { body: o.body } : {}),
  });
}
