import type { FeedPost, Mode, Served } from "./routers.js";

export interface PageModel {
  mode: Mode;
  posts: FeedPost[];
  served: Served;
  /** What the page knows about each node, such as "replays 500 ms behind". */
  notes: Record<string, string>;
  /** The post saved by the POST that redirected here, if any. */
  posted: number | undefined;
  /** This server's @ryw reads so far, under @ryw. */
  reads?: { replica: number; primary: number } | undefined;
}

const MODES: Record<Mode, { label: string; how: string }> = {
  naive: { label: "naive routing", how: "Writes go to the primary; every read goes to the next replica in turn (drizzle's withReplicas), whatever its lag." },
  ryw: { label: "@ryw", how: "Writes go to the primary, which then remembers the write's WAL position for this session; a read goes to a replica that has replayed it, else the primary." },
};

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The whole page: the mode switch, the post form, where this page was read, the user's posts. */
export function renderPage(model: PageModel): string {
  const { mode, posts, served, notes, posted } = model;
  const note = notes[served.node] ? ` (${notes[served.node]})` : "";
  const tabs = (Object.keys(MODES) as Mode[])
    .map((m) => (m === mode ? `<strong>${MODES[m].label}</strong>` : `<a href="/?router=${m}">${MODES[m].label}</a>`))
    .join(" · ");
  let banner = "";
  if (posted !== undefined) {
    banner = posts.some((p) => p.id === posted)
      ? `<p class="banner ok" id="status" data-status="shown">Your post #${posted} is on the page.</p>`
      : `<p class="banner ghost" id="status" data-status="ghost">Ghost post: the post you just saved (#${posted}) is not on this page. It is safe on the primary, but the replica that served this page has not replayed it yet.</p>`;
  }
  const list = posts.length
    ? posts.map((p) => `<li data-id="${p.id}"><span class="title">${escape(p.title)}</span> <span class="id">#${p.id}</span></li>`).join("\n      ")
    : `<li class="empty">No posts yet.</li>`;
  const reads = model.reads ? `<p class="reads">This server's @ryw reads so far: ${model.reads.replica} on replicas, ${model.reads.primary} on the primary.</p>` : "";
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>The ghost post: ${MODES[mode].label}</title>
  <style>
    body { font: 15px/1.45 system-ui, sans-serif; max-width: 42rem; margin: 1.5rem auto; padding: 0 1rem; color: #222; }
    h1 { font-size: 1.4rem; margin-bottom: .2rem; }
    .how, .served, .reads { color: #555; }
    .banner { padding: .5rem .75rem; border-radius: 6px; }
    .ok { background: #e6f4ea; border: 1px solid #9bd3ae; }
    .ghost { background: #fdecea; border: 1px solid #f1a39b; }
    form { display: flex; gap: .5rem; margin: 1rem 0; }
    input[name=title] { flex: 1; padding: .4rem; font: inherit; }
    button { padding: .4rem .9rem; font: inherit; }
    ul { padding-left: 1.2rem; }
    .id { color: #999; font-size: .85em; }
    code { background: #f3f3f3; padding: 0 .25rem; border-radius: 3px; }
  </style>
</head>
<body>
  <h1>The ghost post</h1>
  <p class="modes">${tabs}</p>
  <p class="how">${MODES[mode].how}</p>
  ${banner}
  <form method="post" action="/posts?router=${mode}">
    <input name="title" placeholder="What's new?" maxlength="200" required autofocus>
    <button type="submit">Post</button>
  </form>
  <p class="served" id="served" data-node="${escape(served.node)}">This page was read from <code>${escape(served.node)}</code>${escape(note)}: ${escape(served.why)}.</p>
  <h2>Your posts</h2>
  <ul id="posts">
      ${list}
  </ul>
  ${reads}
</body>
</html>
`;
}
