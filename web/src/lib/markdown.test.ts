// @vitest-environment jsdom
import { describe, expect, it } from 'vitest';
import { renderMarkdown } from './markdown';

function dom(html: string): HTMLElement {
  const div = document.createElement('div');
  div.innerHTML = html;
  return div;
}

describe('renderMarkdown', () => {
  it('shows raw HTML as text', () => {
    const root = dom(renderMarkdown('<img src=x onerror="alert(1)"> <script>alert(2)</script>'));
    expect(root.querySelector('img, script')).toBeNull();
    expect(root.textContent).toContain('<img src=x onerror="alert(1)">');
  });

  it('never makes javascript: links', () => {
    const root = dom(renderMarkdown('[a](javascript:alert(1)) [b](JAVASCRIPT:alert(1)) <javascript:alert(1)> [c](https://example.com)'));
    const hrefs = Array.from(root.querySelectorAll('a'), (a) => a.getAttribute('href'));
    expect(hrefs).toEqual(['https://example.com']);
    expect(root.querySelector('a')?.getAttribute('rel')).toContain('noopener');
  });

  it('highlights code with a copy button', () => {
    const root = dom(renderMarkdown('```python\ndef f():\n    return 1\n```'));
    expect(root.querySelector('.code-block .copy-code')).not.toBeNull();
    expect(root.querySelector('pre code .hljs-keyword')?.textContent).toBe('def');
    expect(root.querySelector('pre pre')).toBeNull();
  });

  it('renders math as MathML', () => {
    const root = dom(renderMarkdown('Euler: $e^{i\\pi} + 1 = 0$'));
    expect(root.querySelector('math')).not.toBeNull();
  });
});
