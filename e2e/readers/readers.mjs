// Reader driver for the oracle harness (readers_test.go): Thunderbird's jsmime, postal-mime
// and mailparser, in one long-running node process.
//
// Input on stdin: messages, each framed as a decimal byte count, LF, then the bytes.
// Output on stdout: one JSON line per message, {"jsmime": R, "postal-mime": R,
// "mailparser": R}, where R is {"shown": [{"field", "name", "address", "text"}...],
// "error": "..."}: for each sender field (From, Sender, Resent-From), what that reader would
// put in front of a person. "name" and "address" are a parsed mailbox (display name and
// mailbox address); "text" is a field as a whole when the reader renders it as a string.
//
// jsmime is loaded from the directory in BFS_JSMIME_DIR (the unpacked vendor tarball): its
// modules are AMD-style, so a small define() shim loads them, and the one array
// comprehension of headerparser.js, pre-standard syntax that current node rejects, is
// rewritten as .map() on the way in.
//
// postal-mime and mailparser come from npm (package.json, installed into node_modules): where
// the npm registry cannot be reached (CI), they are not installed and left out; their
// readings are then absent, not empty. It runs on Debian 12's node 18 and on later ones.

import fs from 'node:fs';
import path from 'node:path';

// optional imports an npm package, or returns null when it is not installed.
async function optional(name) {
	try {
		return await import(name);
	} catch (e) {
		if (e && e.code === 'ERR_MODULE_NOT_FOUND') return null;
		throw e;
	}
}
const postal = await optional('postal-mime');
const mailparser = await optional('mailparser');

const fields = ['From', 'Sender', 'Resent-From'];

function loadJsmime(dir) {
	const cache = new Map();
	const load = (name) => {
		const key = path.basename(name).replace(/\.js$/, '');
		if (cache.has(key)) return cache.get(key).exports;
		let src = fs.readFileSync(path.join(dir, key + '.js'), 'utf8');
		if (key === 'headerparser') {
			const comprehension = '[for (x of getHeaderTokens(header, ",:", {})) x.toString()]';
			if (!src.includes(comprehension)) {
				throw new Error('jsmime: headerparser.js has no array comprehension to rewrite');
			}
			src = src.replace(comprehension, 'getHeaderTokens(header, ",:", {}).map(x => x.toString())');
		}
		const mod = { exports: undefined };
		cache.set(key, mod);
		const define = (factory) => { mod.exports = factory(load); };
		new Function('define', src)(define);
		return mod.exports;
	};
	return load('jsmime');
}

if (process.argv[2] === '--version') {
	const pv = (p) => JSON.parse(fs.readFileSync(new URL(`./node_modules/${p}/package.json`, import.meta.url))).version;
	const v = { node: process.version };
	if (postal) v['postal-mime'] = pv('postal-mime');
	if (mailparser) v.mailparser = pv('mailparser');
	process.stdout.write(JSON.stringify(v) + '\n');
	process.exit(0);
}

const jsmime = loadJsmime(process.env.BFS_JSMIME_DIR);

// flatten turns groups into their members, keeping the group name as displayed text.
function flatten(field, list, out) {
	for (const a of list || []) {
		if (a && Array.isArray(a.group)) {
			out.push({ field, name: a.name || '', address: '', text: '' });
			flatten(field, a.group, out);
		} else if (a) {
			out.push({ field, name: a.name || '', address: a.email ?? a.address ?? '', text: '' });
		}
	}
}

function readJsmime(msg) {
	let top = null;
	const parser = new jsmime.MimeParser({
		startPart(partNum, headers) { if (partNum === '' && top === null) top = headers; },
	}, { bodyformat: 'none', strformat: 'unicode' });
	parser.deliverData(msg.toString('latin1'));
	parser.deliverEOF();
	const shown = [];
	if (top) {
		for (const f of fields) {
			flatten(f, top.get(f), shown);
		}
	}
	return { shown };
}

async function readPostal(msg) {
	const email = await postal.default.parse(msg);
	const shown = [];
	// postal-mime shows the first mailbox of the first From and Sender field; it has no
	// Resent-From, so a client built on it would read that field with its address parser.
	if (email.from) flatten('From', [email.from], shown);
	if (email.sender) flatten('Sender', [email.sender], shown);
	for (const h of email.headers || []) {
		if (h.key === 'resent-from') flatten('Resent-From', postal.addressParser(h.value), shown);
	}
	return { shown };
}

async function readMailparser(msg) {
	const parsed = await mailparser.simpleParser(msg, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true });
	const shown = [];
	for (const [f, key] of [['From', 'from'], ['Sender', 'sender']]) {
		const v = parsed.headers.get(key);
		if (v && typeof v === 'object') {
			flatten(f, v.value, shown);
			if (v.text) shown.push({ field: f, name: '', address: '', text: v.text });
		}
	}
	// mailparser leaves Resent-From a (decoded) string: that is what it displays.
	const rf = parsed.headers.get('resent-from');
	for (const v of [].concat(rf ?? [])) {
		shown.push({ field: 'Resent-From', name: '', address: '', text: typeof v === 'string' ? v : JSON.stringify(v) });
	}
	return { shown };
}

async function guard(fn, msg) {
	try {
		return await fn(msg);
	} catch (e) {
		return { shown: [], error: String(e && e.stack || e) };
	}
}

async function readAll(msg) {
	const r = { 'jsmime': await guard(readJsmime, msg) };
	if (postal) r['postal-mime'] = await guard(readPostal, msg);
	if (mailparser) r.mailparser = await guard(readMailparser, msg);
	return r;
}

// The framing loop: "N\n" then N bytes, one JSON line out for each message, in order.
let buf = Buffer.alloc(0);
let busy = Promise.resolve();
function pump() {
	for (;;) {
		const nl = buf.indexOf(10);
		if (nl < 0) return;
		const n = Number(buf.subarray(0, nl).toString('ascii'));
		if (!Number.isInteger(n) || n < 0) throw new Error('readers: bad frame length');
		if (buf.length < nl + 1 + n) return;
		const msg = Buffer.from(buf.subarray(nl + 1, nl + 1 + n));
		buf = buf.subarray(nl + 1 + n);
		busy = busy.then(async () => {
			process.stdout.write(JSON.stringify(await readAll(msg)) + '\n');
		});
	}
}
process.stdin.on('data', (chunk) => { buf = Buffer.concat([buf, chunk]); pump(); });
process.stdin.on('end', () => { busy.then(() => process.exit(0)); });
