// What one test or benchmark run occupies on the shared infrastructure, and how it is
// released: free ports for every process, and the databases, Redis keys and NATS stream
// named after the run.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { auditStreamOf, robotEventStreamOf } from '@portcullis/kit';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Ports } from '../../deploy/local/platform.mjs';
import { infra } from './infra.js';
import { freePort } from './ports.js';

/** A free port for every listener of the platform. */
export async function freePlatformPorts(): Promise<Ports> {
  const p = freePort;
  return {
    auth: { grpc: await p(), admin: await p(), jwks: await p() },
    'tenant-registry': { grpc: await p(), admin: await p() },
    policy: { grpc: await p(), admin: await p() },
    'tool-gateway': { grpc: await p(), admin: await p() },
    'device-enrollment': { grpc: await p(), admin: await p() },
    audit: { grpc: await p(), admin: await p() },
    'api-gateway': { http: await p(), admin: await p() },
  };
}

/** Drops every database named `<prefix>_…`; returns how many. */
export async function dropDatabasesWithPrefix(prefix: string): Promise<number> {
  const client = new pg.Client({ connectionString: infra.postgresAdminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${prefix}\\_%`]);
    for (const { datname } of rows) await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    return rows.length;
  } finally {
    await client.end();
  }
}

/** Deletes every Redis key starting with `prefix` (sessions, tickets, counters); returns how many. */
export async function deleteRedisKeysWithPrefix(prefix: string): Promise<number> {
  const redis = new Redis(infra.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/** Removes the audit and robot event streams of a subject prefix from the shared NATS server. */
export async function deleteAuditStream(subjectPrefix: string): Promise<void> {
  const nc = await connect({ servers: infra.natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    for (const stream of [auditStreamOf(subjectPrefix), robotEventStreamOf(subjectPrefix)]) {
      await jsm.streams.delete(stream.name).catch(() => false);
    }
  } finally {
    await nc.close();
  }
}
