/**
 * Container events for GetContainerEvents: the server publishes what it did (created, started,
 * stopped, deleted) and, while anyone listens, a watcher notices containers that exited on their
 * own (polled once a second from conmon's exit files through the Runtime API).
 */
import { EventEmitter } from 'node:events';
import type { Runtime } from '../pod/index.js';

export type ContainerEventType =
  'CONTAINER_CREATED_EVENT' | 'CONTAINER_STARTED_EVENT' | 'CONTAINER_STOPPED_EVENT' | 'CONTAINER_DELETED_EVENT';

export interface ContainerEvent {
  containerId: string;
  podId: string;
  type: ContainerEventType;
  /** nanoseconds, decimal */
  at: string;
}

export interface EventHub {
  publish(containerId: string, podId: string, type: ContainerEventType): void;
  subscribe(fn: (e: ContainerEvent) => void): () => void;
  close(): void;
}

export function openEventHub(rt: Runtime, pollMs = 1000): EventHub {
  const em = new EventEmitter();
  em.setMaxListeners(0);
  let running = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let busy = false;
  // the last event of each container: the watcher and a Stop call may both see one exit
  const last = new Map<string, ContainerEventType>();
  const publish = (containerId: string, podId: string, type: ContainerEventType): void => {
    if (last.get(containerId) === type) return;
    if (type === 'CONTAINER_DELETED_EVENT') last.delete(containerId);
    else last.set(containerId, type);
    if (type === 'CONTAINER_STOPPED_EVENT' || type === 'CONTAINER_DELETED_EVENT') running.delete(containerId);
    em.emit('event', { containerId, podId, type, at: (BigInt(Date.now()) * 1_000_000n).toString() });
  };
  const poll = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const now = new Set<string>();
      const all = await rt.listContainers({ all: true });
      for (const c of all) {
        if (c.state === 'running') now.add(c.id);
        else if (running.has(c.id) && c.state === 'exited') publish(c.id, c.podId, 'CONTAINER_STOPPED_EVENT');
      }
      running = now;
    } catch {
      // a pod removed while listing: the next poll sees the truth
    } finally {
      busy = false;
    }
  };
  return {
    publish,
    subscribe(fn) {
      em.on('event', fn);
      if (!timer) {
        void poll();
        timer = setInterval(() => void poll(), pollMs);
      }
      return () => {
        em.off('event', fn);
        if (em.listenerCount('event') === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      };
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      em.removeAllListeners();
    },
  };
}
