// cdp.mjs - a minimal Chrome DevTools Protocol client over
// --remote-debugging-pipe (fd 3 to the browser, fd 4 from it; messages are
// JSON ended by a NUL byte), so the browser tests need no npm package and
// nothing is ever downloaded: the browser is the system's /usr/bin/chromium.
//
// launch({userDataDir, executable}) starts a headless Chromium with the
// flags the tests require and returns {send(method, params, sessionId),
// on(method, fn), close()}.  Every call has a deadline (rejects with an
// Error naming the method).
import { spawn } from 'node:child_process';

export const FLAGS = [
	'--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
	'--disable-background-networking', '--disable-component-update', '--disable-sync',
	'--no-default-browser-check', '--remote-debugging-pipe',
];

export function launch({ userDataDir, executable = '/usr/bin/chromium', callTimeoutMs = 20000 }) {
	const proc = spawn(executable, [...FLAGS, `--user-data-dir=${userDataDir}`, 'about:blank'], {
		stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
	});
	let stderr = '';
	proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
	const out = proc.stdio[3], inp = proc.stdio[4];
	const pending = new Map(), listeners = new Map();
	let nextId = 1, buf = Buffer.alloc(0), exited = false;
	proc.on('exit', () => {
		exited = true;
		for (const { reject, method } of pending.values())
			reject(new Error(`chromium exited during ${method}: ${stderr}`));
		pending.clear();
	});
	inp.on('data', (chunk) => {
		buf = Buffer.concat([buf, chunk]);
		let z;
		while ((z = buf.indexOf(0)) >= 0) {
			const msg = JSON.parse(buf.subarray(0, z).toString('utf8'));
			buf = buf.subarray(z + 1);
			if (msg.id && pending.has(msg.id)) {
				const p = pending.get(msg.id);
				pending.delete(msg.id);
				clearTimeout(p.timer);
				if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
				else p.resolve(msg.result);
			} else if (msg.method) {
				for (const fn of listeners.get(msg.method) || []) fn(msg.params, msg.sessionId);
			}
		}
	});
	function send(method, params = {}, sessionId) {
		if (exited) return Promise.reject(new Error(`chromium is not running (${method}): ${stderr}`));
		const id = nextId++;
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				pending.delete(id);
				reject(new Error(`${method} timed out`));
			}, callTimeoutMs);
			pending.set(id, { resolve, reject, method, timer });
			out.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
		});
	}
	function on(method, fn) {
		if (!listeners.has(method)) listeners.set(method, []);
		listeners.get(method).push(fn);
	}
	async function close() {
		if (exited) return;
		try { await send('Browser.close'); } catch { /* it may go before answering */ }
		await new Promise((r) => {
			const t = setTimeout(() => { proc.kill('SIGKILL'); r(); }, 5000);
			proc.on('exit', () => { clearTimeout(t); r(); });
			if (exited) { clearTimeout(t); r(); }
		});
	}
	return { send, on, close, proc };
}

// A page: a new tab attached with its own session.  goto(url) waits for
// the load event (or the deadline); evaluate(expr) awaits a promise and
// returns its value.
export async function openPage(b, deadlineMs = 20000) {
	const { targetId } = await b.send('Target.createTarget', { url: 'about:blank' });
	const { sessionId } = await b.send('Target.attachToTarget', { targetId, flatten: true });
	await b.send('Page.enable', {}, sessionId);
	await b.send('Runtime.enable', {}, sessionId);
	let loaded = null;
	b.on('Page.loadEventFired', (_p, sid) => { if (sid === sessionId && loaded) loaded(); });
	return {
		async goto(url) {
			const done = new Promise((r) => { loaded = r; });
			const nav = await b.send('Page.navigate', { url }, sessionId);
			if (nav.errorText) throw new Error(`navigating to ${url}: ${nav.errorText}`);
			await Promise.race([done, new Promise((_, j) => setTimeout(() => j(new Error(`${url} did not load`)), deadlineMs))]);
		},
		async evaluate(expression) {
			const r = await b.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId);
			if (r.exceptionDetails) throw new Error(`evaluate: ${JSON.stringify(r.exceptionDetails).slice(0, 400)}`);
			return r.result.value;
		},
	};
}
