/**
 * Connections to Redis from a URL: `redis://[:password@]host:port[/db]` or `rediss://…` for TLS (ioredis reads
 * both). Connections retry for ever with a capped back-off, so a restarted Redis is rejoined by itself.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { UserError } from '../util/errors.ts';

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unreadable Redis URL)';
  }
}

export function checkRedisUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`"${url}" is not a Redis URL; write redis://HOST:6379 (or rediss:// for TLS)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new UserError(`${redactUrl(url)} is not a Redis URL; write redis://HOST:6379 (or rediss:// for TLS)`);
  }
}

/**
 * A connection for BullMQ. `blocking`: for workers and event listeners, whose commands wait on the server
 * (BullMQ requires them never to give up on a request).
 */
export function connect(url: string, opts: { blocking?: boolean; tls?: RedisOptions['tls'] } = {}): Redis {
  checkRedisUrl(url);
  return new Redis(url, {
    maxRetriesPerRequest: opts.blocking ? null : 20,
    enableOfflineQueue: true,
    retryStrategy: (times) => Math.min(200 * times, 2_000),
    ...(opts.tls ? { tls: opts.tls } : {}),
    lazyConnect: false,
  });
}

/** Resolves once the connection answers PING; rejects with a plain message after `timeoutMs`. */
export async function waitReady(r: Redis, url: string, timeoutMs = 15_000): Promise<void> {
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new UserError(
    `cannot reach Redis at ${redactUrl(url)} (no answer within ${timeoutMs / 1000} s); is redis-server running there?`,
  )), timeoutMs).unref());
  await Promise.race([r.ping(), timer]);
}
