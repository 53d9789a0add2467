// One app server of the test (packages/core/test/http/next.test.ts): postgres.js clients for the
// cluster, and two routers, one per strategy. The sources are imported as they are, like the
// vitest aliases do; Next compiles them.
import postgres from "postgres";
import { Redis } from "ioredis";
import { createRyw, postgresJsRunner, RedisStore } from "../../../../src/index.ts";

function create() {
  const env = process.env;
  const open = (url) => postgres(url, { max: 4, onnotice: () => {}, fetch_types: false });
  const primary = open(env.DATABASE_URL);
  const replicas = env.DATABASE_REPLICA_URLS.split(",").map(open);
  const names = JSON.parse(env.RYW_SERVER_NAMES);
  const base = {
    primary: postgresJsRunner(primary),
    replicas: replicas.map((sql, i) => ({ name: `r${i}`, query: postgresJsRunner(sql) })),
    tracker: { intervalMs: 20 },
  };
  const lsn = createRyw({ ...base, store: new RedisStore({ client: new Redis(env.REDIS_URL), prefix: env.RYW_REDIS_PREFIX }) });
  const token = createRyw({ ...base, strategy: "token", tokenKeys: [env.RYW_TOKEN_KEY] });
  const routes = { lsn: [], token: [] };
  // Without `required`, a bigint that JSON cannot carry.
  const keep = (list) => (e) => e.type === "route" && list.push({ reason: e.decision.reason, scope: e.decision.scope ?? null, target: e.decision.target });
  lsn.subscribe(keep(routes.lsn));
  token.subscribe(keep(routes.token));
  return {
    lsn,
    token,
    /** The last route decision of each router, for the test to compare with what the server said. */
    lastRoute: (which) => routes[which].at(-1) ?? null,
    async writePost(ryw, authorId, title) {
      const [row] = await primary`insert into "Post" ("authorId", title) values (${authorId}, ${title}) returning id`;
      await ryw.afterWrite();
      return row.id;
    },
    readNewest(ryw, authorId) {
      return ryw.read(async (target) => {
        const sql = target.kind === "primary" ? primary : replicas[target.index];
        const [row] = await sql`select inet_server_port() as port, coalesce(max(id), 0)::int as newest from "Post" where "authorId" = ${authorId}`;
        return { server: names[row.port] ?? `unknown:${row.port}`, newest: row.newest };
      });
    },
  };
}

// Route modules may be evaluated more than once in dev; one set of connections per process.
export const app = (globalThis.__rywNextTestApp ??= create());
