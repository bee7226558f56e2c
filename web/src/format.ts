// How dates and devices read to people: no seconds, no raw strings.

/// A moment as a person reads it: day and time to the minute, the year only
/// when it is not this one.
export function formatWhen(ms: number): string {
  const date = new Date(ms);
  const thisYear = date.getFullYear() === new Date().getFullYear();
  return date.toLocaleString([], {
    weekday: "short",
    day: "numeric",
    month: "short",
    ...(thisYear ? {} : { year: "numeric" }),
    hour: "2-digit",
    minute: "2-digit",
  });
}

/// "Chrome on Linux" from a browser's user-agent string, as account pages
/// of Google or Slack name a signed-in device; the raw string for anything
/// it does not recognise (a command-line client names itself plainly).
export function describeUserAgent(userAgent: string | null | undefined): string {
  if (!userAgent) return "Unknown device";
  const browser =
    /\bEdg\//.test(userAgent) ? "Edge"
    : /\bOPR\//.test(userAgent) ? "Opera"
    : /\bFirefox\//.test(userAgent) ? "Firefox"
    : /\b(?:Chrome|Chromium|HeadlessChrome)\//.test(userAgent) ? "Chrome"
    : /\bVersion\/[\d.]+.*Safari\//.test(userAgent) ? "Safari"
    : null;
  const system =
    /\bAndroid\b/.test(userAgent) ? "Android"
    : /\b(?:iPhone|iPad|iPod)\b/.test(userAgent) ? "iOS"
    : /\bWindows\b/.test(userAgent) ? "Windows"
    : /\bMac OS X\b|\bMacintosh\b/.test(userAgent) ? "macOS"
    : /\bCrOS\b/.test(userAgent) ? "ChromeOS"
    : /\bLinux\b/.test(userAgent) ? "Linux"
    : null;
  if (browser && system) return `${browser} on ${system}`;
  if (browser) return browser;
  // Not a browser: the first product token (conclave-cli/0.1.0 → conclave-cli 0.1.0).
  const product = /^([\w.-]+)\/([\w.-]+)/.exec(userAgent);
  return product ? `${product[1]} ${product[2]}` : userAgent.slice(0, 60);
}
