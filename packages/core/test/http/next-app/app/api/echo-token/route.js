// What the middleware forwarded.
export function GET(request) {
  return Response.json({ header: request.headers.get("ryw-token"), runtime: request.headers.get("x-middleware-runtime") });
}
