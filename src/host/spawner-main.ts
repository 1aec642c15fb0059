/**
 * The spawner helper's process (see ./spawner.ts): runs each command it is sent with
 * `realHost.run` and sends back the result. It exits when its parent's channel closes.
 */
import { realHost } from './index.js';
import { NspodError } from './../errors/index.js';
import type { SpawnReply, SpawnRequest } from './spawner.js';

process.on('message', (m: SpawnRequest) => {
  const reply = (r: SpawnReply): void => {
    if (process.connected) process.send!(r);
  };
  realHost.run(m.cmd, m.args, m.opts).then(
    (result) => reply({ id: m.id, result }),
    (e: unknown) =>
      reply({
        id: m.id,
        error:
          e instanceof NspodError ? { code: e.code, message: e.message } : { code: 'INTERNAL', message: String(e) },
      }),
  );
});
process.on('disconnect', () => process.exit(0));
