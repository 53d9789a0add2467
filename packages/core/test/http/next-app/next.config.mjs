// The test runs `next dev` with its build output in a temporary directory, so nothing is left here.
export default { distDir: process.env.RYW_NEXT_DIST_DIR ?? ".next" };
