// The log viewer's page, as the extension host gives it to the webview (logPanel.ts) and as the browser
// test loads it: one markup for both. No `vscode` import here, so a plain Node test can build it.
// Strict CSP: scripts and styles only with the page's nonce (the bundle is a nonce'd <script src>).

export interface ViewerPage {
  runId: number;
  /** A fresh random value per page (base64). */
  nonce: string;
  /** The webview's resource origin (webview.cspSource) for styles and fonts. */
  cspSource: string;
  /** The URL of dist/webview.js as the webview can load it. */
  script: string;
  /** An Odoo server log rather than a run's: the level filter is shown, set to this level. */
  levels?: 'debug' | 'info' | 'warning' | 'error' | 'critical';
}

const attr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

const LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const;

export function viewerHtml({ runId, nonce, cspSource, script, levels }: ViewerPage): string {
  const id = Math.trunc(Number(runId));
  return `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${attr(cspSource)} 'nonce-${attr(nonce)}'; script-src 'nonce-${attr(nonce)}'; font-src ${attr(cspSource)};">
<meta name="viewport" content="width=device-width, initial-scale=1.0"><title>Run #${id}</title>
<style nonce="${attr(nonce)}">
html, body { height: 100%; }
body { padding: 0; margin: 0; display: flex; flex-direction: column; overflow: hidden; color: var(--vscode-editor-foreground); background: var(--vscode-editor-background); font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); }
#bar { display: flex; flex-wrap: wrap; gap: 4px 8px; align-items: center; padding: 4px 8px; border-bottom: 1px solid var(--vscode-panel-border); background: var(--vscode-editor-background); flex: none; }
#banner { flex: none; padding: 4px 8px; color: var(--vscode-editorWarning-foreground); background: var(--vscode-inputValidation-warningBackground); border-bottom: 1px solid var(--vscode-inputValidation-warningBorder); }
#banner[hidden] { display: none; }
/* A build's tests (build.ts): a compact header; the failures scroll within a few rows of their own. */
#build { flex: none; padding: 2px 8px; border-bottom: 1px solid var(--vscode-panel-border); font-family: var(--vscode-font-family); }
#build[hidden] { display: none; }
#build .counts { font-weight: bold; margin-right: 8px; } #build .counts.passed { color: var(--vscode-testing-iconPassed); } #build .counts.failed { color: var(--vscode-testing-iconFailed, var(--vscode-errorForeground)); }
#build .meta, #build .where, #build .more { color: var(--vscode-descriptionForeground); }
#build .failures { list-style: none; margin: 2px 0 0; padding: 0; max-height: 7.5em; overflow-y: auto; }
#build .failures li { line-height: 1.5em; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#build .failures li::before { content: '✕ '; color: var(--vscode-testing-iconFailed, var(--vscode-errorForeground)); }
#build .failures li.more::before { content: none; }
#build .test { font-weight: 600; }
#viewport { position: relative; flex: 1; min-height: 0; overflow: auto; }
/* At any width the search keeps room to type and Copy stays whole: the bar wraps onto more rows. */
#search { flex: 1 1 14em; min-width: 10em; max-width: 32em; } #bar vscode-checkbox, #bar vscode-button, #count { flex: none; white-space: nowrap; }
#count.error { color: var(--vscode-errorForeground); }
#rows { position: absolute; top: 0; left: 0; right: 0; --digits: 3; }
.line { height: 18px; line-height: 18px; white-space: pre; padding: 0 8px 0 calc(var(--digits) * 1ch + 20px); }
/* Line numbers: one text node beside the lines drawn (main.ts numbers()), so neither the text nor a selection holds them. */
#gutter { position: absolute; top: 0; left: 0; width: calc(var(--digits) * 1ch + 8px); line-height: 18px; white-space: pre; text-align: right; color: var(--vscode-editorLineNumber-foreground, var(--vscode-descriptionForeground)); user-select: none; pointer-events: none; }
/* stderr: a bar in the gutter. */
.line.stderr { box-shadow: inset 3px 0 0 var(--vscode-errorForeground); }
.line.system { color: var(--vscode-descriptionForeground); font-style: italic; }
.line.attempt { position: relative; font-style: normal; font-weight: bold; color: var(--vscode-editor-foreground); background: var(--vscode-editor-inactiveSelectionBackground, rgba(128, 128, 128, 0.2)); box-shadow: inset 0 2px 0 var(--vscode-focusBorder, #007fd4); }
.line.attempt::after { content: attr(data-attempt); position: absolute; right: 8px; top: 0; padding: 0 6px; color: var(--vscode-badge-foreground, #fff); background: var(--vscode-badge-background, #4d4d4d); }
/* Word wrap: at spaces; a word longer than a row is broken anywhere. */
body.wrap .line { height: auto; white-space: pre-wrap; word-break: normal; overflow-wrap: anywhere; }
.line.error { color: var(--vscode-errorForeground); } .line.warning { color: var(--vscode-editorWarning-foreground); }
.hit { background: var(--vscode-editor-findMatchHighlightBackground); } .line.current .hit { background: var(--vscode-editor-findMatchBackground); outline: 1px solid var(--vscode-editor-findMatchBorder, transparent); }
.ts { color: var(--vscode-descriptionForeground); } a { color: var(--vscode-textLink-foreground); } a.url, a.file { text-decoration: underline; }
.status.failed { color: var(--vscode-errorForeground); } .status.succeeded { color: var(--vscode-testing-iconPassed); }
.connection.reconnecting { color: var(--vscode-editorWarning-foreground); font-weight: bold; } .connection.live { color: var(--vscode-descriptionForeground); }
.fg0{color:var(--vscode-terminal-ansiBlack)}.fg1{color:var(--vscode-terminal-ansiRed)}.fg2{color:var(--vscode-terminal-ansiGreen)}.fg3{color:var(--vscode-terminal-ansiYellow)}
.fg4{color:var(--vscode-terminal-ansiBlue)}.fg5{color:var(--vscode-terminal-ansiMagenta)}.fg6{color:var(--vscode-terminal-ansiCyan)}.fg7{color:var(--vscode-terminal-ansiWhite)}
.fg8{color:var(--vscode-terminal-ansiBrightBlack)}.fg9{color:var(--vscode-terminal-ansiBrightRed)}.fg10{color:var(--vscode-terminal-ansiBrightGreen)}.fg11{color:var(--vscode-terminal-ansiBrightYellow)}
.fg12{color:var(--vscode-terminal-ansiBrightBlue)}.fg13{color:var(--vscode-terminal-ansiBrightMagenta)}.fg14{color:var(--vscode-terminal-ansiBrightCyan)}.fg15{color:var(--vscode-terminal-ansiBrightWhite)}
.bg0{background:var(--vscode-terminal-ansiBlack)}.bg1{background:var(--vscode-terminal-ansiRed)}.bg2{background:var(--vscode-terminal-ansiGreen)}.bg3{background:var(--vscode-terminal-ansiYellow)}
.bg4{background:var(--vscode-terminal-ansiBlue)}.bg5{background:var(--vscode-terminal-ansiMagenta)}.bg6{background:var(--vscode-terminal-ansiCyan)}.bg7{background:var(--vscode-terminal-ansiWhite)}
.bg8{background:var(--vscode-terminal-ansiBrightBlack)}.bg9{background:var(--vscode-terminal-ansiBrightRed)}.bg10{background:var(--vscode-terminal-ansiBrightGreen)}.bg11{background:var(--vscode-terminal-ansiBrightYellow)}
.bg12{background:var(--vscode-terminal-ansiBrightBlue)}.bg13{background:var(--vscode-terminal-ansiBrightMagenta)}.bg14{background:var(--vscode-terminal-ansiBrightCyan)}.bg15{background:var(--vscode-terminal-ansiBrightWhite)}
#level { flex: none; width: 13em; }
</style></head><body>
<div id="bar"><span id="status" class="status"></span><span id="connection" class="connection"></span>
<vscode-textfield id="search" placeholder="Search"></vscode-textfield>
<vscode-checkbox id="case" title="Match case">Aa</vscode-checkbox><vscode-checkbox id="regex" title="Regular expression">.*</vscode-checkbox>
<vscode-checkbox id="filter" title="Show only the matching lines">Only matches</vscode-checkbox><span id="count"></span>
<vscode-checkbox id="follow" checked>Follow</vscode-checkbox><vscode-checkbox id="times">Timestamps</vscode-checkbox>
<vscode-checkbox id="wrap">Wrap</vscode-checkbox>
<vscode-button id="copy" secondary>Copy</vscode-button>${levels && LEVELS.includes(levels) ? `
<vscode-single-select id="level" title="Show this level and above">${LEVELS.map((l) => `<vscode-option value="${l}"${l === levels ? ' selected' : ''}>${l} and above</vscode-option>`).join('')}</vscode-single-select>` : ''}</div>
<div id="build" role="region" aria-label="Tests of this build" hidden></div>
<div id="banner" role="status" hidden>Reconnecting… lines will be filled in from where they stopped.<span id="banner-detail"></span></div>
<div id="viewport" tabindex="0" data-run="${id}"><div id="spacer"></div><div id="rows"></div></div>
<script nonce="${attr(nonce)}">window.__odooopsRun = ${id};</script>
<script nonce="${attr(nonce)}" src="${attr(script)}"></script>
</body></html>`;
}
