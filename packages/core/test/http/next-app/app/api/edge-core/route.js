// The README says the router cannot run on the Edge runtime; this route is how the test checks it.
import { createRyw } from "../../../../../../src/index.ts";

export const runtime = "edge";

export function GET() {
  return Response.json({ loaded: typeof createRyw });
}
