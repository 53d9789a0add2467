// The App Router wants a root layout; this app only has route handlers.
export default function RootLayout({ children }) {
  return children;
}
