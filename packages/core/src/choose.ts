import type { ReplicaView } from "./tracker.js";

/** Picks one replica out of the caught-up candidates (never called with an empty list). */
export type ReplicaChooser = (candidates: ReadonlyArray<ReplicaView>) => ReplicaView;

/** Names of the built-in choosers, as accepted by the `choose` option. */
export type ChooserName = "round-robin" | "least-lag" | "random";

export function roundRobin(): ReplicaChooser {
  let next = 0;
  return (candidates) => candidates[next++ % candidates.length]!;
}

/** The replica with the highest replayed position: the most likely to satisfy later reads too. */
export const leastLag: ReplicaChooser = (candidates) =>
  candidates.reduce((best, r) => ((r.position ?? -1n) > (best.position ?? -1n) ? r : best));

export const random: ReplicaChooser = (candidates) => candidates[Math.floor(Math.random() * candidates.length)]!;

export function chooser(name: ChooserName): ReplicaChooser {
  return name === "round-robin" ? roundRobin() : name === "least-lag" ? leastLag : random;
}
