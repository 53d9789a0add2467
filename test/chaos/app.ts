import type { RywEvent, RywStats } from "@ryw/core";

/** One app server's database access, whatever the ORM: what the chaos checker asks of it. */
export interface ChaosApp {
  /** Inserts a Post of `user` inside runWithScope(user) and returns its id. */
  write(user: number, title: string): Promise<number>;
  /**
   * Reads Post `postId` back inside runWithScope(user): is it there, with `title`? The title
   * tells the user's post from another one with the same id: after a failover that lost writes,
   * the new primary hands out their ids again.
   */
  read(user: number, postId: number, title: string): Promise<boolean>;
  subscribe(listener: (event: RywEvent) => void): () => void;
  stats(): RywStats;
  close(): Promise<void>;
}
