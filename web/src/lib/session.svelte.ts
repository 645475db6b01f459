// Who is signed in and which page shows: first-run setup, login, the chat, the
// account page or the admin page. Pages live at real paths (`/login`, `/setup`,
// `/account`, `/admin`; the server answers index.html for them) and the chat keeps
// its `?c=` URL; signing in returns to the URL that asked for it.

import * as api from './api';

export type View = 'loading' | 'setup' | 'login' | 'chat' | 'account' | 'admin' | 'share';

const PAGES = new Set(['/login', '/setup', '/account', '/admin']);

export class Session {
  status: api.AuthStatus | null = $state(null);
  path = $state(location.pathname);
  /** Why the login page is showing (a session that ended, a disabled account). */
  reason = $state('');
  /** The server could not be reached for the status: shown with a retry. */
  failure = $state('');

  user: api.User | null = $derived(this.status?.user ?? null);

  view: View = $derived.by(() => {
    const status = this.status;
    if (!status) return 'loading';
    if (this.path.startsWith('/share/')) return 'share'; // readable signed out when public
    if (status.setupNeeded) return 'setup';
    if (status.authEnabled && !status.user) return 'login';
    if (this.path === '/account') return 'account';
    if (this.path === '/admin' && status.user?.isAdmin && status.authEnabled) return 'admin';
    return 'chat';
  });

  start(): void {
    window.addEventListener('popstate', () => (this.path = location.pathname));
    api.setUnauthorizedHandler(() => void this.lost('Your session has ended. Sign in again.'));
    void this.refresh();
  }

  async refresh(): Promise<void> {
    try {
      this.status = await api.authStatus();
      this.failure = '';
    } catch (error) {
      this.failure = `Cannot reach the server: ${String(error)}`;
      return;
    }
    // Show the page's own path while signed out; back to the chat once signed in.
    const view = this.view;
    if (view === 'setup' || view === 'login') this.replacePath(`/${view}`, true);
    else if (this.path === '/login' || this.path === '/setup') this.replacePath(this.returnTo(), false);
  }

  /** The server refused the session (ended, expired, account disabled). */
  async lost(reason: string): Promise<void> {
    this.reason = reason;
    await this.refresh();
  }

  signedIn(user: api.User): void {
    this.reason = '';
    if (this.status) this.status = { ...this.status, setupNeeded: false, user };
    this.replacePath(this.returnTo(), false);
  }

  async signOut(): Promise<void> {
    try {
      await api.logout();
    } finally {
      this.reason = 'You have signed out.';
      if (this.status) this.status = { ...this.status, user: null };
      this.replacePath('/login', false);
    }
  }

  /** Go to the login page, coming back to this URL once signed in. */
  signInAndReturn(): void {
    this.replacePath('/login', true);
  }

  navigate(path: string): void {
    if (path === location.pathname + location.search) return;
    history.pushState(null, '', path);
    this.path = location.pathname;
  }

  /** Replace the URL; `remember` keeps where the user was going (path and query)
   *  so that signing in returns there. */
  private replacePath(path: string, remember: boolean): void {
    if (remember && !PAGES.has(location.pathname)) {
      sessionStorage.setItem('durachat-return', location.pathname + location.search);
    }
    if (location.pathname + location.search !== path) history.replaceState(null, '', path);
    this.path = location.pathname;
  }

  private returnTo(): string {
    const saved = sessionStorage.getItem('durachat-return');
    sessionStorage.removeItem('durachat-return');
    return saved && saved.startsWith('/') && !saved.startsWith('//') ? saved : '/';
  }
}
