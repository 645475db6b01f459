// Model output -> safe HTML: markdown-it (raw HTML off), highlight.js for code,
// KaTeX for $...$ and $$...$$, then DOMPurify. Model output never runs script.

import MarkdownIt, { type StateInline, type Token } from 'markdown-it';

type Md = InstanceType<typeof MarkdownIt>;
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/common';
import katex from 'katex';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function codeBlock(code: string, lang: string): string {
  let body: string;
  if (lang && hljs.getLanguage(lang)) {
    try {
      body = hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
    } catch {
      body = escapeHtml(code);
    }
  } else {
    body = escapeHtml(code);
  }
  const label = escapeHtml(lang || 'text');
  return (
    `<div class="code-block"><div class="code-head"><span>${label}</span>` +
    `<button type="button" class="copy-code" aria-label="Copy code">Copy</button></div>` +
    `<pre><code class="hljs">${body}</code></pre></div>\n`
  );
}

const md: Md = new MarkdownIt({ html: false, linkify: true, breaks: false });
md.renderer.rules.fence = (tokens: Token[], idx: number) => {
  const token = tokens[idx]!;
  const lang = token.info.trim().split(/\s+/)[0] ?? '';
  return codeBlock(token.content, lang);
};

// Math: $$...$$ blocks and $...$ inline, rendered by KaTeX (which never emits script).
function mathPlugin(parser: Md): void {
  parser.inline.ruler.after('escape', 'math_inline', (state: StateInline, silent: boolean) => {
    const src = state.src;
    const start = state.pos;
    if (src[start] !== '$') return false;
    const display = src[start + 1] === '$';
    const open = display ? 2 : 1;
    if (!display && (src[start + 1] === ' ' || src[start + 1] === undefined)) return false;
    const close = src.indexOf(display ? '$$' : '$', start + open);
    if (close < 0 || close === start + open) return false;
    if (!display && (src[close - 1] === ' ' || /\d/.test(src[close + 1] ?? ''))) return false;
    if (!silent) {
      const token = state.push('math', '', 0);
      token.content = src.slice(start + open, close);
      token.markup = display ? '$$' : '$';
    }
    state.pos = close + open;
    return true;
  });
  parser.renderer.rules['math'] = (tokens: Token[], idx: number) => {
    const token = tokens[idx]!;
    try {
      return katex.renderToString(token.content, { displayMode: token.markup === '$$', throwOnError: false, trust: false, output: 'mathml' });
    } catch {
      return escapeHtml(token.content);
    }
  };
}
md.use(mathPlugin);

// Links open in a new tab without handing it our window.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.getAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

export function renderMarkdown(source: string): string {
  const html = md.render(source);
  return DOMPurify.sanitize(html, {
    USE_PROFILES: { html: true, mathMl: true },
    FORBID_TAGS: ['style', 'form', 'input', 'textarea', 'select', 'iframe', 'object', 'embed'],
    FORBID_ATTR: ['style'],
    ALLOWED_URI_REGEXP: /^(?:(?:https?|mailto):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i,
  });
}
