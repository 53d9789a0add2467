import type { RywEvent, RywStats } from "@ryw/core";

/** One app server's database access, whatever the ORM: what the chaos checker asks of it. */
export interface ChaosApp {
  /** Inserts a Post of `user` inside runWithScope(user) and returns its id. */
  write(user: number, title: string): Promise<number>;
  /** Reads Post `postId` back inside runWithScope(user): is it there? */
  read(user: number, postId: number): Promise<boolean>;
  subscribe(listener: (event: RywEvent) => void): () => void;
  stats(): RywStats;
  close(): Promise<void>;
}
