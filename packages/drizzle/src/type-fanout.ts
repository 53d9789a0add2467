import type { Sql } from "postgres";

type Options = Sql["options"];

/**
 * The `options` object drizzle sees. `drizzle()` installs its own type parsers and serializers by
 * assigning `client.options.parsers[oid]` and `serializers[oid]`; those writes go to every
 * underlying client. Without that, replicas would keep postgres.js's defaults and return dates
 * parsed differently from the primary's, silently.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function fanOutOptions(clients: ReadonlyArray<Sql<any>>): Options {
  const first = clients[0]!;
  const fan = (key: "parsers" | "serializers") =>
    new Proxy(first.options[key] as Record<string, unknown>, {
      set(_target, property, value) {
        for (const client of clients) (client.options[key] as Record<string | symbol, unknown>)[property] = value;
        return true;
      },
      deleteProperty(_target, property) {
        for (const client of clients) delete (client.options[key] as Record<string | symbol, unknown>)[property];
        return true;
      },
    });
  return Object.create(first.options, {
    parsers: { value: fan("parsers"), enumerable: true },
    serializers: { value: fan("serializers"), enumerable: true },
  }) as Options;
}
