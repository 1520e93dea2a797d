// xsite.mjs - can site B reach site A through the gateway?  Headless
// Chromium (cdp.mjs) opens B's attack page, which sets cookies, registers a
// service worker for scope "/" (its sw.js answers "pwned" when a page named
// secret* is opened), and fetches A's page both ways (CORS and no-cors); then
// opens A's secret page in the same profile and reports what it sees.
//
// node xsite.mjs PROFILE_DIR B_PAGE_URL A_PAGE_URL A_OTHER_URL
//   A_OTHER_URL: A's page by another address (its own origin), fetched too.
// Prints one JSON line {"b":{...},"a":{...}}; exit 0, or 1 with the error
// on stderr.  Every step has a deadline; the whole run at most 90 s.
import { launch, openPage } from './cdp.mjs';

const [profile, bUrl, aUrl, aOther] = process.argv.slice(2);
if (!aOther) {
	console.error('usage: node xsite.mjs PROFILE_DIR B_PAGE_URL A_PAGE_URL A_OTHER_URL');
	process.exit(2);
}
const overall = setTimeout(() => { console.error('xsite: 90 s deadline'); process.exit(1); }, 90000);

const attack = (aUrls) => `(async () => {
	const r = {origin: location.origin, href: location.href};
	const deadline = (p, ms, what) => Promise.race([p, new Promise((_, j) => setTimeout(() => j(new Error(what + ' timed out')), ms))]);
	document.cookie = 'fromb=1; path=/';
	document.cookie = 'frombdomain=1; domain=localhost; path=/';
	r.cookie = document.cookie;
	try {
		const reg = await deadline(navigator.serviceWorker.register('sw.js', {scope: '/'}), 10000, 'register');
		r.swScope = reg.scope;
		await deadline(navigator.serviceWorker.ready, 10000, 'ready');
		const sw = reg.active || reg.waiting || reg.installing;
		if (sw && sw.state !== 'activated')
			await deadline(new Promise((ok) => sw.addEventListener('statechange', () => sw.state === 'activated' && ok())), 10000, 'activation');
		r.sw = 'active';
	} catch (e) { r.sw = 'error: ' + e.message; }
	r.read = {};
	r.nocors = {};
	for (const u of ${JSON.stringify(aUrls)}) {
		try {
			const resp = await deadline(fetch(u, {credentials: 'include'}), 10000, 'fetch');
			r.read[u] = 'read: ' + (await resp.text()).slice(0, 200);
		} catch (e) { r.read[u] = 'blocked: ' + e.message; }
		try {
			const resp = await deadline(fetch(u, {mode: 'no-cors', credentials: 'include'}), 10000, 'fetch');
			r.nocors[u] = resp.type + ' ' + resp.status + ' ' + (await resp.text()).length;
		} catch (e) { r.nocors[u] = 'error: ' + e.message; }
	}
	return r;
})()`;

const look = `(async () => ({
	origin: location.origin,
	controlled: !!(navigator.serviceWorker && navigator.serviceWorker.controller),
	cookie: document.cookie,
	body: document.body ? document.body.innerText.slice(0, 200) : '',
}))()`;

let b;
try {
	b = launch({ userDataDir: profile });
	const page = await openPage(b);
	await page.goto(bUrl);
	const rb = await page.evaluate(attack([aUrl, aOther]));
	await page.goto(aUrl);
	const ra = await page.evaluate(look);
	console.log(JSON.stringify({ b: rb, a: ra }));
	await b.close();
	clearTimeout(overall);
} catch (e) {
	console.error(`xsite: ${e.message}`);
	if (b) await b.close();
	process.exit(1);
}
