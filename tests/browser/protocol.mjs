// The command loop the dashboard and log-viewer drivers share: one JSON line
// out when ready ({"ready": true}); then one JSON command a line on stdin, one
// JSON answer a line on stdout ({"ok": value} or {"error": message}).
// `own(c)` runs the driver's own commands and returns their value, or
// `undefined` for a command it does not know; the shared ones are:
//   {"cmd": "eval", "js"}          the body of an async function run in the page; its result
//   {"cmd": "url"}
//   {"cmd": "console"}             the page's console messages so far
//   {"cmd": "screenshot", "path"}  the whole page
//   {"cmd": "close"}
import readline from 'node:readline';
import { chromium } from 'playwright-core';

export const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');

export function launch() {
  return chromium.launch({ executablePath: process.env.ORDERWATCH_TEST_CHROMIUM || '/usr/bin/chromium' });
}

/// `tab()` is the page the shared commands act on.
export async function serve(browser, tab, consoleLines, own) {
  out({ ready: true });
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    try {
      const c = JSON.parse(line);
      let v = await own(c);
      if (v === undefined) {
        switch (c.cmd) {
          case 'eval':
            v = await tab().evaluate(`(async () => { ${c.js}\n })()`);
            break;
          case 'url':
            v = tab().url();
            break;
          case 'console':
            v = consoleLines;
            break;
          case 'screenshot':
            await tab().screenshot({ path: c.path, fullPage: true });
            v = null;
            break;
          case 'close':
            out({ ok: null });
            await browser.close();
            process.exit(0);
          default:
            throw new Error('unknown command ' + c.cmd);
        }
      }
      out({ ok: v === undefined ? null : v });
    } catch (e) {
      out({ error: String((e && e.stack) || e) });
    }
  }
  await browser.close();
}
