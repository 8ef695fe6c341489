// Drives headless Debian chromium (playwright-core) through orderwatch's
// dashboard for tests/real_logviewer.rs: log in, search, live tail, an event
// in its context, error groups, settings, and the manager's 403 page.
//
// Protocol: one JSON line out when ready ({"ready": true}); then one JSON
// command a line on stdin, one JSON answer a line on stdout ({"ok": value} or
// {"error": message}):
//   {"cmd": "goto", "url"}                  load a page (waits for "load"); its HTTP status
//   {"cmd": "fill", "selector", "value"}
//   {"cmd": "click", "selector"}            click; waits for the page it loads, if any
//   {"cmd": "check", "selector"}            tick a checkbox (no navigation)
//   {"cmd": "wait_text", "selector", "text"} until an element matching selector holds text
//   {"cmd": "visible", "selector"}          until it is visible
//   {"cmd": "text", "selector"}             the first match's innerText
//   {"cmd": "eval", "js"}                   the body of an async function run in the page; its result
//   {"cmd": "url"}
//   {"cmd": "console"}                      the page's console messages so far
//   {"cmd": "screenshot", "path"}           the whole page
//   {"cmd": "close"}
import { launch, serve } from './protocol.mjs';

async function main() {
  const browser = await launch();
  // A phone-sized window: the pages must be usable there.
  const context = await browser.newContext({ viewport: { width: 414, height: 896 }, deviceScaleFactor: 1 });
  const tab = await context.newPage();
  const consoleLines = [];
  tab.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  tab.on('pageerror', (e) => consoleLines.push(`pageerror: ${e}`));
  tab.setDefaultTimeout(20000);
  await serve(browser, () => tab, consoleLines, async (c) => {
    let v = null;
    switch (c.cmd) {
      case 'goto': {
        const res = await tab.goto(c.url, { waitUntil: 'load' });
        v = res ? res.status() : null;
        break;
      }
      case 'fill':
        await tab.fill(c.selector, c.value);
        break;
      case 'click': {
        const before = tab.url();
        await tab.click(c.selector);
        await tab.waitForLoadState('load');
        v = before !== tab.url();
        break;
      }
      case 'check':
        await tab.check(c.selector);
        break;
      case 'wait_text':
        await tab.locator(c.selector).filter({ hasText: c.text }).first().waitFor();
        break;
      case 'visible':
        await tab.locator(c.selector).first().waitFor({ state: 'visible' });
        break;
      case 'text':
        v = await tab.locator(c.selector).first().innerText();
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
