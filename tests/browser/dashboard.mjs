// Drives headless Debian chromium (playwright-core) through orderwatch's
// dashboard for tests/real_dashboard.rs. Each person is a browser context of
// their own (their own cookies), named by the test.
//
// Protocol: one JSON line out when ready ({"ready": true}); then one JSON
// command a line on stdin, one JSON answer a line on stdout ({"ok": value}
// or {"error": message}):
//   {"cmd": "as", "who", "width"?}      switch to (or open) that person's tab; width: a phone's 390
//   {"cmd": "goto", "url"}              load a page; answers the HTTP status
//   {"cmd": "fill", "selector", "value"}
//   {"cmd": "select", "selector", "value"}
//   {"cmd": "submit", "selector"}       click and wait for the page it loads; answers its URL
//   {"cmd": "text", "selector"}         the element's text ("" when there is none)
//   {"cmd": "wait_for", "selector", "timeout"?}  until it is in the page (no reload)
//   {"cmd": "eval", "js"}               an async function's body run in the page
//   {"cmd": "url"}
//   {"cmd": "console"}                  the tab's console messages and page errors so far
//   {"cmd": "screenshot", "path"}       the full page
//   {"cmd": "close"}
import { launch, serve } from './protocol.mjs';

async function main() {
  const browser = await launch();
  const tabs = new Map();
  const consoleLines = [];
  let tab = null;
  await serve(browser, () => tab, consoleLines, async (c) => {
    let v = null;
    switch (c.cmd) {
      case 'as':
        if (!tabs.has(c.who)) {
          const viewport = c.width ? { width: c.width, height: 844 } : { width: 1280, height: 900 };
          const context = await browser.newContext({ viewport, locale: 'en-US' });
          const t = await context.newPage();
          t.setDefaultTimeout(20000);
          t.on('console', (m) => consoleLines.push(`${c.who} ${m.type()}: ${m.text()}`));
          t.on('pageerror', (e) => consoleLines.push(`${c.who} pageerror: ${e}`));
          tabs.set(c.who, t);
        }
        tab = tabs.get(c.who);
        break;
      case 'goto': {
        const r = await tab.goto(c.url, { waitUntil: 'load' });
        v = r ? r.status() : null;
        break;
      }
      case 'fill':
        await tab.fill(c.selector, c.value);
        break;
      case 'select':
        await tab.selectOption(c.selector, c.value);
        break;
      case 'submit':
        await Promise.all([tab.waitForNavigation({ waitUntil: 'load' }), tab.click(c.selector)]);
        v = tab.url();
        break;
      case 'text': {
        const el = await tab.$(c.selector);
        v = el ? (await el.textContent()) : '';
        break;
      }
      case 'wait_for':
        await tab.waitForSelector(c.selector, { timeout: c.timeout || 20000 });
        break;
      default:
        return undefined;
    }
    return v;
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
