#!/usr/bin/env node
// The test S3 front: a reverse proxy that stands between the server under test and s3rver.
//
// s3rver speaks the S3 REST API but accepts any SigV4 signature, so a signing bug would pass
// against it and only fail in production against MinIO or AWS. This front verifies every request
// the way S3 and MinIO do before forwarding it, counts requests so tests can assert how many
// writes a workload caused, and injects faults (SlowDown answers, connection resets, delays,
// outages) on demand through a small control API on a second port.
//
// It uses Node's built-in modules only. Run `node front.js --help` for the options.
'use strict';

const crypto = require('crypto');
const http = require('http');
const net = require('net');

const LISTEN_HOST = '127.0.0.1';
const MAX_SKEW_MS = 15 * 60 * 1000;
// s3rver knows one account; it checks the access key but not the signature.
const S3RVER_ACCESS_KEY = 'S3RVER';
const FAULT_MODES = ['slowdown', 'reset', 'delay', 'outage'];
// Headers that describe one hop rather than the request, so they are not forwarded.
const HOP_HEADERS = new Set([
    'connection',
    'keep-alive',
    'proxy-connection',
    'transfer-encoding',
    'te',
    'upgrade',
    'expect',
    'trailer',
]);

const USAGE = `Usage: node front.js --s3rver-port K [options]

Options:
  --port N              port for S3 clients (default 0: a free port)
  --control-port N      port for the control API (default 0: a free port)
  --s3rver-port N       port of the s3rver behind this front (required)
  --access-key KEY      accepted access key (env S3_ACCESS_KEY, default garden-test)
  --secret-key SECRET   its secret (env S3_SECRET_KEY, default garden-test-secret)
  --region REGION       expected region in the credential scope (env S3_REGION, default us-east-1)
  --max-body-bytes N    largest request body accepted (default 67108864)
  --verbose             log every request on stderr, not only rejected ones

Everything listens on ${LISTEN_HOST}. When ready, one JSON line with the ports goes to stdout.`;

function parseArguments(argv) {
    const options = {
        port: 0,
        controlPort: 0,
        s3rverPort: null,
        accessKey: process.env.S3_ACCESS_KEY || 'garden-test',
        secretKey: process.env.S3_SECRET_KEY || 'garden-test-secret',
        region: process.env.S3_REGION || 'us-east-1',
        maxBodyBytes: 64 * 1024 * 1024,
        verbose: false,
    };
    const numeric = {
        '--port': 'port',
        '--control-port': 'controlPort',
        '--s3rver-port': 's3rverPort',
        '--max-body-bytes': 'maxBodyBytes',
    };
    const textual = {
        '--access-key': 'accessKey',
        '--secret-key': 'secretKey',
        '--region': 'region',
    };

    for (let i = 0; i < argv.length; i++) {
        const name = argv[i];
        if (name === '--help' || name === '-h') {
            process.stdout.write(USAGE + '\n');
            process.exit(0);
        }
        if (name === '--verbose') {
            options.verbose = true;
            continue;
        }
        if (!(name in numeric) && !(name in textual)) {
            throw new Error(`unknown option ${name}`);
        }
        if (i + 1 >= argv.length) {
            throw new Error(`option ${name} needs a value`);
        }
        const value = argv[++i];
        if (name in textual) {
            options[textual[name]] = value;
            continue;
        }
        if (!/^[0-9]+$/.test(value)) {
            throw new Error(`option ${name} needs a non-negative integer, not '${value}'`);
        }
        options[numeric[name]] = Number(value);
    }
    if (options.s3rverPort === null || options.s3rverPort === 0) {
        throw new Error('--s3rver-port is required');
    }
    if (options.accessKey === '' || options.secretKey === '') {
        throw new Error('the access key and the secret key must not be empty');
    }
    return options;
}

function log(fields) {
    const parts = [`ts=${new Date().toISOString()}`, 'module=s3front'];
    for (const [name, value] of Object.entries(fields)) {
        const text = String(value);
        parts.push(/[\s"=]/.test(text) ? `${name}=${JSON.stringify(text)}` : `${name}=${text}`);
    }
    process.stderr.write(parts.join(' ') + '\n');
}

// ---------------------------------------------------------------------------------------------
// SigV4 canonicalisation, as S3 and MinIO compute it on the receiving side.

function isUnreserved(byte) {
    return (
        (byte >= 0x41 && byte <= 0x5a) ||
        (byte >= 0x61 && byte <= 0x7a) ||
        (byte >= 0x30 && byte <= 0x39) ||
        byte === 0x2d ||
        byte === 0x2e ||
        byte === 0x5f ||
        byte === 0x7e
    );
}

// Encodes bytes the RFC 3986 way that SigV4 requires: unreserved characters stay, everything
// else becomes %XX with upper-case hex. Slashes stay only when keepSlash is set (paths).
function encodeRfc3986(bytes, keepSlash) {
    let out = '';
    for (const byte of bytes) {
        if (isUnreserved(byte) || (keepSlash && byte === 0x2f)) {
            out += String.fromCharCode(byte);
        } else {
            out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
        }
    }
    return out;
}

// Percent-decodes to raw bytes and returns null on a malformed escape, which S3 rejects.
function decodePercent(text) {
    const raw = Buffer.from(text, 'latin1');
    const out = Buffer.alloc(raw.length);
    let length = 0;
    for (let i = 0; i < raw.length; i++) {
        if (raw[i] !== 0x25) {
            out[length++] = raw[i];
            continue;
        }
        const hex = raw.toString('latin1', i + 1, i + 3);
        if (!/^[0-9A-Fa-f]{2}$/.test(hex)) {
            return null;
        }
        out[length++] = parseInt(hex, 16);
        i += 2;
    }
    return out.subarray(0, length);
}

// S3 signs each path segment URI-encoded once (never twice, unlike other AWS services) and does
// not resolve "." or "..". MinIO decodes the path it received and encodes it again, so a path
// sent with a raw ':' or lower-case hex is canonicalised to '%3A' and a client that signed the
// path as it wrote it fails. Doing the same here catches that class of bug.
function canonicalUri(rawPath) {
    const bytes = decodePercent(rawPath);
    if (bytes === null) {
        return null;
    }
    const encoded = encodeRfc3986(bytes, true);
    return encoded === '' ? '/' : encoded;
}

// The canonical query string: every parameter decoded ('+' means a space, as in form encoding),
// encoded again RFC 3986 style, a flag without '=' given an empty value, sorted by name and
// then by value. A client that signs its query as written must therefore already send it in
// this form: sorted, '%20' rather than '+', and "name=" for flags.
function canonicalQuery(rawQuery) {
    const pairs = [];
    for (const part of rawQuery.split('&')) {
        if (part === '') {
            continue;
        }
        const cut = part.indexOf('=');
        const name = decodePercent((cut < 0 ? part : part.slice(0, cut)).replace(/\+/g, ' '));
        const value = decodePercent(cut < 0 ? '' : part.slice(cut + 1).replace(/\+/g, ' '));
        if (name === null || value === null) {
            return null;
        }
        pairs.push([encodeRfc3986(name, false), encodeRfc3986(value, false)]);
    }
    pairs.sort((a, b) => compareText(a[0], b[0]) || compareText(a[1], b[1]));
    return pairs.map(([name, value]) => `${name}=${value}`).join('&');
}

function compareText(a, b) {
    if (a < b) {
        return -1;
    }
    return a > b ? 1 : 0;
}

// All values of one header, in arrival order, from Node's raw header list.
function headerValues(rawHeaders, lowerName) {
    const values = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
        if (rawHeaders[i].toLowerCase() === lowerName) {
            values.push(rawHeaders[i + 1]);
        }
    }
    return values;
}

function trimHeaderValue(value) {
    return value.trim().replace(/\s+/g, ' ');
}

function hmac(key, text) {
    return crypto.createHmac('sha256', key).update(text, 'utf8').digest();
}

function sha256Hex(data) {
    return crypto.createHash('sha256').update(data).digest('hex');
}

function signingKey(secret, date, region, service) {
    const dateKey = hmac('AWS4' + secret, date);
    return hmac(hmac(hmac(dateKey, region), service), 'aws4_request');
}

function parseAmzDate(text) {
    const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (!match) {
        return NaN;
    }
    const [, year, month, day, hour, minute, second] = match.map(Number);
    return Date.UTC(year, month - 1, day, hour, minute, second);
}

function rejection(status, code, message, extra) {
    return { status, code, message, extra: extra || {} };
}

// Splits "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." into its parts.
function parseAuthorization(header) {
    const match = /^AWS4-HMAC-SHA256\s+(.*)$/s.exec(header);
    if (!match) {
        if (/^AWS\s/.test(header)) {
            return rejection(
                400,
                'InvalidRequest',
                'The authorization mechanism you have provided is not supported. ' +
                    'Please use AWS4-HMAC-SHA256.'
            );
        }
        return rejection(400, 'AuthorizationHeaderMalformed', 'Unsupported authorization type.');
    }
    const parts = new Map();
    for (const component of match[1].split(',')) {
        const text = component.trim();
        const cut = text.indexOf('=');
        if (cut <= 0 || parts.has(text.slice(0, cut))) {
            return rejection(400, 'AuthorizationHeaderMalformed', `Malformed component '${text}'.`);
        }
        parts.set(text.slice(0, cut), text.slice(cut + 1));
    }
    for (const name of ['Credential', 'SignedHeaders', 'Signature']) {
        if (!parts.has(name)) {
            return rejection(
                400,
                'AuthorizationHeaderMalformed',
                `The authorization header is malformed; missing ${name}.`
            );
        }
    }
    if (parts.size !== 3) {
        return rejection(
            400,
            'AuthorizationHeaderMalformed',
            'The authorization header requires exactly Credential, SignedHeaders and Signature.'
        );
    }

    const scope = parts.get('Credential').split('/');
    if (scope.length !== 5 || !/^\d{8}$/.test(scope[1]) || scope[4] !== 'aws4_request') {
        return rejection(
            400,
            'AuthorizationHeaderMalformed',
            `The credential '${parts.get('Credential')}' is malformed; expecting ` +
                '"<KEY>/<YYYYMMDD>/<REGION>/<SERVICE>/aws4_request".'
        );
    }
    return {
        accessKey: scope[0],
        date: scope[1],
        region: scope[2],
        service: scope[3],
        scope: scope.slice(1).join('/'),
        signedHeaders: parts.get('SignedHeaders').split(';'),
        signature: parts.get('Signature'),
    };
}

function checkScope(auth, amzDate, config) {
    if (auth.date !== amzDate.slice(0, 8)) {
        return rejection(
            400,
            'AuthorizationHeaderMalformed',
            `Invalid credential date '${auth.date}'. Date is not the same as X-Amz-Date.`
        );
    }
    if (auth.region !== config.region) {
        return rejection(
            400,
            'AuthorizationHeaderMalformed',
            `The authorization header is malformed; the region '${auth.region}' is wrong; ` +
                `expecting '${config.region}'`,
            { Region: config.region }
        );
    }
    if (auth.service !== 's3') {
        return rejection(
            400,
            'AuthorizationHeaderMalformed',
            `The authorization header is malformed; incorrect service '${auth.service}'. ` +
                "This endpoint belongs to 's3'."
        );
    }
    return null;
}

// Builds the canonical header block from the signed header names, and refuses requests whose
// x-amz-* headers are not all signed (S3 does) or whose signed headers are absent.
function canonicalHeaders(signedNames, rawHeaders) {
    const names = [...new Set(signedNames.map((name) => name.toLowerCase()))].sort(compareText);
    if (!names.includes('host')) {
        return rejection(403, 'AccessDenied', 'The host header must be signed.');
    }
    for (let i = 0; i < rawHeaders.length; i += 2) {
        const name = rawHeaders[i].toLowerCase();
        if (name.startsWith('x-amz-') && !names.includes(name)) {
            return rejection(
                403,
                'AccessDenied',
                `There were headers present in the request which were not signed: ${name}`,
                { HeadersNotSigned: name }
            );
        }
    }

    let block = '';
    for (const name of names) {
        const values = headerValues(rawHeaders, name);
        if (values.length === 0) {
            return rejection(
                403,
                'AccessDenied',
                `The signed header '${name}' is not present in the request.`
            );
        }
        block += `${name}:${values.map(trimHeaderValue).join(',')}\n`;
    }
    return { block, list: names.join(';') };
}

function checkPayloadHeader(payloadHash) {
    if (payloadHash === undefined) {
        return rejection(
            400,
            'InvalidRequest',
            'Missing required header for this request: x-amz-content-sha256'
        );
    }
    if (payloadHash.startsWith('STREAMING-')) {
        return rejection(
            501,
            'NotImplemented',
            'Chunked (streaming) payload signing is not supported by this test front.'
        );
    }
    if (payloadHash !== 'UNSIGNED-PAYLOAD' && !/^[0-9a-fA-F]{64}$/.test(payloadHash)) {
        return rejection(
            400,
            'InvalidArgument',
            'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, ' +
                'STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value.',
            { ArgumentName: 'x-amz-content-sha256', ArgumentValue: payloadHash }
        );
    }
    return null;
}

// The body checks that follow a valid signature: the payload hash the client signed must be
// the hash of what arrived, and so must a Content-MD5 when one is given.
function checkBody(payloadHash, rawHeaders, body) {
    if (payloadHash !== 'UNSIGNED-PAYLOAD') {
        const computed = sha256Hex(body);
        if (computed !== payloadHash.toLowerCase()) {
            return rejection(
                400,
                'XAmzContentSHA256Mismatch',
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                { ClientComputedContentSHA256: payloadHash, S3ComputedContentSHA256: computed }
            );
        }
    }

    const md5Values = headerValues(rawHeaders, 'content-md5');
    if (md5Values.length === 0) {
        return null;
    }
    const given = md5Values[0].trim();
    if (md5Values.length > 1 || !/^[A-Za-z0-9+/]{22}==$/.test(given)) {
        return rejection(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.', {
            'Content-MD5': md5Values.join(','),
        });
    }
    const computed = crypto.createHash('md5').update(body).digest('base64');
    if (computed !== given) {
        return rejection(
            400,
            'BadDigest',
            'The Content-MD5 you specified did not match what we received.',
            { ExpectedDigest: given, CalculatedDigest: computed }
        );
    }
    return null;
}

function signatureMatches(given, expected) {
    if (!/^[0-9a-f]{64}$/.test(given)) {
        return false;
    }
    return crypto.timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

// Verifies one request's SigV4 Authorization header and body. Returns null when the request
// is acceptable, or a rejection {status, code, message, extra} that becomes an S3 error.
function verifyRequest(request, config, now) {
    const authValues = headerValues(request.rawHeaders, 'authorization');
    if (authValues.length === 0) {
        const presigned = /(^|&)X-Amz-(Signature|Credential)=/i.test(request.query);
        return rejection(
            403,
            'AccessDenied',
            presigned
                ? 'Presigned URLs are not accepted here: sign with the Authorization header.'
                : 'Access Denied: anonymous requests are refused; the Authorization header is ' +
                      'missing.'
        );
    }
    if (authValues.length > 1) {
        return rejection(400, 'InvalidArgument', 'Only one Authorization header is allowed.');
    }
    const auth = parseAuthorization(authValues[0]);
    if (auth.code) {
        return auth;
    }
    if (auth.accessKey !== config.accessKey) {
        return rejection(
            403,
            'InvalidAccessKeyId',
            'The AWS Access Key Id you provided does not exist in our records.',
            { AWSAccessKeyId: auth.accessKey }
        );
    }

    // Like MinIO, take the first x-amz-date for the time; a repeated one still enters the
    // canonical headers as "a,b", so the signature check refuses it.
    const amzDates = headerValues(request.rawHeaders, 'x-amz-date');
    const amzDate = amzDates.length > 0 ? amzDates[0].trim() : '';
    const requestTime = parseAmzDate(amzDate);
    if (Number.isNaN(requestTime)) {
        return rejection(
            403,
            'AccessDenied',
            'AWS authentication requires a valid Date or x-amz-date header'
        );
    }
    if (Math.abs(now - requestTime) > MAX_SKEW_MS) {
        return rejection(
            403,
            'RequestTimeTooSkewed',
            'The difference between the request time and the current time is too large.',
            {
                RequestTime: amzDate,
                ServerTime: new Date(now).toISOString().replace(/\.\d+Z$/, 'Z'),
                MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS),
            }
        );
    }
    const scopeError = checkScope(auth, amzDate, config);
    if (scopeError) {
        return scopeError;
    }

    const payloadHashes = headerValues(request.rawHeaders, 'x-amz-content-sha256');
    const payloadHash = payloadHashes.length > 0 ? payloadHashes[0].trim() : undefined;
    const payloadError = checkPayloadHeader(payloadHash);
    if (payloadError) {
        return payloadError;
    }
    const headers = canonicalHeaders(auth.signedHeaders, request.rawHeaders);
    if (headers.code) {
        return headers;
    }
    const uri = canonicalUri(request.path);
    const query = canonicalQuery(request.query);
    if (uri === null || query === null) {
        return rejection(400, 'InvalidURI', "Couldn't parse the specified URI.");
    }

    const canonicalRequest = [
        request.method,
        uri,
        query,
        headers.block,
        headers.list,
        payloadHash,
    ].join('\n');
    const stringToSign = [
        'AWS4-HMAC-SHA256',
        amzDate,
        auth.scope,
        sha256Hex(canonicalRequest),
    ].join('\n');
    const key = signingKey(config.secretKey, auth.date, auth.region, auth.service);
    const expected = crypto.createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
    if (!signatureMatches(auth.signature, expected)) {
        return rejection(
            403,
            'SignatureDoesNotMatch',
            'The request signature we calculated does not match the signature you provided. ' +
                'Check your key and signing method.',
            {
                AWSAccessKeyId: auth.accessKey,
                StringToSign: stringToSign,
                SignatureProvided: auth.signature,
                CanonicalRequest: canonicalRequest,
            }
        );
    }
    return checkBody(payloadHash, request.rawHeaders, request.body);
}

// ---------------------------------------------------------------------------------------------
// Request classification and counters.

function splitUrl(url) {
    const cut = url.indexOf('?');
    if (cut < 0) {
        return { path: url, query: '' };
    }
    return { path: url.slice(0, cut), query: url.slice(cut + 1) };
}

function queryNames(rawQuery) {
    const names = new Set();
    for (const part of rawQuery.split('&')) {
        const cut = part.indexOf('=');
        const name = decodePercent(cut < 0 ? part : part.slice(0, cut));
        if (part !== '' && name !== null) {
            names.add(name.toString('utf8'));
        }
    }
    return names;
}

function keyPrefix(key) {
    const cut = key.indexOf(':');
    return cut < 0 ? '(none)' : key.slice(0, cut);
}

// Names the S3 operation of a path-style request and the object key it addresses, if any.
function classifyRequest(method, path, rawQuery, rawHeaders) {
    const slash = path.indexOf('/', 1);
    const bucket = slash < 0 ? path.slice(1) : path.slice(1, slash);
    const rawKey = slash < 0 ? '' : path.slice(slash + 1);
    const decodedKey = decodePercent(rawKey);
    const key = decodedKey === null ? rawKey : decodedKey.toString('utf8');
    const names = queryNames(rawQuery);

    if (bucket === '') {
        return { operation: method === 'GET' ? 'ListBuckets' : 'Other', key: null };
    }
    if (key === '') {
        const bucketOperations = {
            HEAD: 'HeadBucket',
            PUT: names.size === 0 ? 'CreateBucket' : 'Other',
            DELETE: names.size === 0 ? 'DeleteBucket' : 'Other',
            POST: names.has('delete') ? 'DeleteObjects' : 'Other',
        };
        let operation = bucketOperations[method] || 'Other';
        if (method === 'GET' && names.has('list-type')) {
            operation = 'ListObjectsV2';
        } else if (method === 'GET' && [...names].every(isListParameter)) {
            operation = 'ListObjects';
        }
        return { operation, key: null };
    }

    const objectOperations = {
        PUT: headerValues(rawHeaders, 'x-amz-copy-source').length > 0 ? 'CopyObject' : 'PutObject',
        GET: 'GetObject',
        HEAD: 'HeadObject',
        DELETE: 'DeleteObject',
    };
    const multipart = names.has('uploadId') || names.has('uploads') || names.has('partNumber');
    const operation = multipart ? 'Multipart' : objectOperations[method] || 'Other';
    return { operation, key };
}

function isListParameter(name) {
    return ['prefix', 'delimiter', 'marker', 'max-keys', 'encoding-type'].includes(name);
}

// Pulls the keys out of a DeleteObjects body. The body is small, generated XML, so a pattern
// is enough; entities are decoded so that counts use the real key.
function deleteObjectsKeys(body) {
    const keys = [];
    const pattern = /<Key>([\s\S]*?)<\/Key>/g;
    const text = body.toString('utf8');
    let match = pattern.exec(text);
    while (match !== null) {
        keys.push(decodeXmlText(match[1]));
        match = pattern.exec(text);
    }
    return keys;
}

function decodeXmlText(text) {
    const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    return text.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-z]+);/g, (whole, entity) => {
        let code = NaN;
        if (entity.startsWith('#x')) {
            code = parseInt(entity.slice(2), 16);
        } else if (entity.startsWith('#')) {
            code = parseInt(entity.slice(1), 10);
        } else {
            return entity in named ? named[entity] : whole;
        }
        return code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    });
}

function newStats() {
    return {
        started_at: new Date().toISOString(),
        requests: 0,
        bytes_received: 0,
        by_method: {},
        by_operation: {},
        by_key: {},
        by_key_ok: {},
        delete_objects: {
            requests: 0,
            requests_ok: 0,
            keys: 0,
            keys_ok: 0,
            by_prefix: {},
            by_prefix_ok: {},
        },
        by_status: {},
        outcomes: {},
        rejected: {},
        faults: { slowdown: 0, reset: 0, delay: 0, outage: 0 },
        connections: 0,
        outage_resets: 0,
    };
}

function bump(map, name) {
    map[name] = (map[name] || 0) + 1;
}

// ---------------------------------------------------------------------------------------------
// Faults.

// Validates a fault description from the control API and fills in its defaults.
function parseFault(input, nextId) {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
        throw new Error('the fault must be a JSON object');
    }
    const known = [
        'mode',
        'share',
        'count',
        'duration_ms',
        'ms',
        'after_bytes',
        'when',
        'how',
        'method',
        'prefix',
        'operation',
    ];
    for (const name of Object.keys(input)) {
        if (!known.includes(name)) {
            throw new Error(`unknown fault field '${name}'`);
        }
    }
    if (!FAULT_MODES.includes(input.mode)) {
        throw new Error(`mode must be one of ${FAULT_MODES.join(', ')}`);
    }
    const fault = {
        id: nextId,
        mode: input.mode,
        share: numberField(input, 'share', 1, 0, 1),
        count: input.count === undefined ? null : numberField(input, 'count', 0, 1, Infinity),
        duration_ms: numberField(input, 'duration_ms', 0, 0, Infinity),
        method: textField(input, 'method'),
        prefix: textField(input, 'prefix'),
        operation: textField(input, 'operation'),
        hits: 0,
        expires_at: null,
    };
    if (fault.method !== null) {
        fault.method = fault.method.toUpperCase();
    }
    if (fault.share === 0) {
        throw new Error('share must be greater than 0');
    }
    // The first matching request is always hit; the credit then spreads hits evenly so that a
    // share of 0.5 hits exactly every second request, which keeps tests deterministic.
    fault.credit = 1 - fault.share;
    if (fault.mode === 'delay') {
        fault.ms = numberField(input, 'ms', 1000, 0, 600000);
    }
    if (fault.mode === 'reset') {
        fault.when = input.when === undefined ? 'before' : input.when;
        if (fault.when !== 'before' && fault.when !== 'after') {
            throw new Error("when must be 'before' or 'after'");
        }
        fault.after_bytes = numberField(input, 'after_bytes', 0, 0, Infinity);
    }
    if (fault.mode === 'outage') {
        fault.how = input.how === undefined ? 'refuse' : input.how;
        if (fault.how !== 'refuse' && fault.how !== 'reset') {
            throw new Error("how must be 'refuse' or 'reset'");
        }
        // A closed port never sees the connections it refuses, so nothing could count them.
        if (fault.how === 'refuse' && (fault.count !== null || fault.share !== 1)) {
            throw new Error('a refusing outage takes duration_ms or DELETE, not count or share');
        }
    }
    return fault;
}

function numberField(input, name, fallback, low, high) {
    if (input[name] === undefined) {
        return fallback;
    }
    const value = input[name];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < low || value > high) {
        throw new Error(`${name} must be a number from ${low} to ${high}`);
    }
    return value;
}

function textField(input, name) {
    if (input[name] === undefined) {
        return null;
    }
    if (typeof input[name] !== 'string' || input[name] === '') {
        throw new Error(`${name} must be a non-empty string`);
    }
    return input[name];
}

function faultMatches(fault, request) {
    if (fault.method !== null && fault.method !== request.method) {
        return false;
    }
    if (fault.operation !== null && fault.operation !== request.operation) {
        return false;
    }
    if (fault.prefix !== null) {
        if (request.prefixes.length === 0 || !request.prefixes.includes(fault.prefix)) {
            return false;
        }
    }
    return true;
}

function publicFault(fault) {
    const copy = { ...fault };
    delete copy.credit;
    return copy;
}

// ---------------------------------------------------------------------------------------------
// The front itself.

class Front {
    constructor(options) {
        this.options = options;
        this.stats = newStats();
        this.faults = [];
        this.nextFaultId = 1;
        this.s3Sockets = new Set();
        this.s3Listener = null;
        this.reopening = null;
        this.s3Port = options.port;
        this.requestSerial = 0;
        this.upstreamAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
        this.httpServer = http.createServer((req, res) => this.onS3Request(req, res));
        // Keep idle client connections open longer than clients keep them, as real S3 servers
        // do, so that a test does not see a keep-alive race that has nothing to do with it.
        this.httpServer.keepAliveTimeout = 65000;
        this.httpServer.headersTimeout = 70000;
        this.httpServer.requestTimeout = 0;
        this.controlServer = http.createServer((req, res) => this.onControlRequest(req, res));
    }

    async start() {
        await this.openS3Listener();
        await new Promise((resolve, reject) => {
            this.controlServer.once('error', reject);
            this.controlServer.listen(this.options.controlPort, LISTEN_HOST, resolve);
        });
        return {
            s3_port: this.s3Port,
            control_port: this.controlServer.address().port,
            s3rver_port: this.options.s3rverPort,
        };
    }

    // The S3 port is served by a plain TCP listener that hands accepted sockets to the HTTP
    // server. That split lets an outage stop listening (clients get "connection refused") or
    // reset connections as they arrive, and then listen again on the same port.
    openS3Listener() {
        const listener = net.createServer((socket) => this.onS3Connection(socket));
        return new Promise((resolve, reject) => {
            listener.once('error', reject);
            listener.listen(this.s3Port, LISTEN_HOST, () => {
                listener.removeListener('error', reject);
                listener.on('error', (error) => {
                    log({ level: 'error', event: 'listener_error', error: error.message });
                });
                this.s3Listener = listener;
                this.s3Port = listener.address().port;
                resolve();
            });
        });
    }

    closeS3Listener() {
        if (this.s3Listener !== null) {
            this.s3Listener.close();
            this.s3Listener = null;
        }
        this.dropClientConnections();
    }

    dropClientConnections() {
        for (const socket of this.s3Sockets) {
            resetSocket(socket);
        }
    }

    onS3Connection(socket) {
        this.stats.connections++;
        const outage = this.takeFault('outage', null, (fault) => fault.how === 'reset');
        if (outage) {
            this.stats.outage_resets++;
            resetSocket(socket);
            return;
        }
        this.s3Sockets.add(socket);
        socket.on('close', () => this.s3Sockets.delete(socket));
        this.httpServer.emit('connection', socket);
    }

    // Keeps the listener state in line with the active faults: a "refuse" outage closes it,
    // and the last one to go opens it again on the same port. The promise settles once the
    // port is listening again, so the control API answers only when clients can connect.
    syncListener() {
        const refusing = this.faults.some(
            (fault) => fault.mode === 'outage' && fault.how === 'refuse'
        );
        if (refusing && this.s3Listener !== null) {
            this.closeS3Listener();
        } else if (!refusing && this.s3Listener === null && this.reopening === null) {
            this.reopening = this.openS3Listener()
                .catch((error) => {
                    log({
                        level: 'error',
                        event: 'relisten_failed',
                        port: this.s3Port,
                        error: error.message,
                    });
                })
                .finally(() => {
                    this.reopening = null;
                });
        }
        return this.reopening || Promise.resolve();
    }

    addFault(input) {
        const fault = parseFault(input, this.nextFaultId++);
        if (fault.duration_ms > 0) {
            fault.expires_at = new Date(Date.now() + fault.duration_ms).toISOString();
            fault.timer = setTimeout(() => this.removeFault(fault.id), fault.duration_ms);
            fault.timer.unref();
        }
        this.faults.push(fault);
        if (fault.mode === 'outage') {
            this.stats.faults.outage++;
            if (fault.how === 'reset') {
                this.dropClientConnections();
            }
            this.syncListener();
        }
        return fault;
    }

    removeFault(id) {
        const before = this.faults.length;
        this.faults = this.faults.filter((fault) => {
            if (id !== null && fault.id !== id) {
                return true;
            }
            clearTimeout(fault.timer);
            return false;
        });
        this.syncListener();
        return before - this.faults.length;
    }

    // Picks the first active fault of a mode that matches the request and whose share says
    // this request is hit, and uses up one of its count.
    takeFault(mode, request, extraCheck) {
        for (const fault of this.faults) {
            if (fault.mode !== mode || (request !== null && !faultMatches(fault, request))) {
                continue;
            }
            if (extraCheck && !extraCheck(fault)) {
                continue;
            }
            fault.credit += fault.share;
            if (fault.credit < 1 - 1e-9) {
                continue;
            }
            fault.credit -= 1;
            fault.hits++;
            if (mode !== 'outage') {
                this.stats.faults[mode]++;
            }
            if (fault.count !== null && --fault.count === 0) {
                this.removeFault(fault.id);
            }
            return fault;
        }
        return null;
    }

    onS3Request(req, res) {
        const { path, query } = splitUrl(req.url);
        const { operation, key } = classifyRequest(req.method, path, query, req.rawHeaders);
        const request = {
            id: requestId(++this.requestSerial),
            method: req.method,
            path,
            query,
            operation,
            key,
            prefixes: key === null ? [] : [keyPrefix(key)],
            rawHeaders: req.rawHeaders,
            body: null,
            started: Date.now(),
        };
        this.stats.requests++;
        bump(this.stats.by_method, req.method);
        bump(this.stats.by_operation, operation);
        if (key !== null) {
            bump(this.stats.by_key, `${req.method} ${keyPrefix(key)}`);
        }

        // A reset "before" is chosen as the request head arrives, since it may cut the body.
        const reset = this.takeFault('reset', request, (fault) => fault.when === 'before');
        if (reset && reset.after_bytes === 0) {
            this.finishWithReset(req, request);
            return;
        }
        this.readBody(req, res, request, reset)
            .then((body) => {
                if (body === null) {
                    return undefined;
                }
                request.body = body;
                return this.handleVerified(req, res, request);
            })
            .catch((error) => this.failRequest(req, res, request, error));
    }

    // The last resort for a fault in the front itself: the client gets a 500 (or a reset when
    // the answer had already begun) and the front keeps serving.
    failRequest(req, res, request, error) {
        log({
            level: 'error',
            event: 'front_failed',
            request: request.id,
            error: error.stack || error.message,
        });
        if (res.headersSent) {
            resetSocket(req.socket);
            return;
        }
        const problem = rejection(500, 'InternalError', 'The test front failed: see its log.');
        this.sendError(res, request, problem, true, 'front_error');
    }

    // Reads the whole body: the payload hash must be checked before anything is forwarded.
    // Resolves to null when the request was already dealt with (reset, too large, client gone).
    readBody(req, res, request, reset) {
        return new Promise((resolve) => {
            const chunks = [];
            let received = 0;
            let done = false;
            const resetAfter = reset ? reset.after_bytes : Infinity;
            req.on('data', (chunk) => {
                if (done) {
                    return;
                }
                received += chunk.length;
                this.stats.bytes_received += chunk.length;
                chunks.push(chunk);
                if (received >= resetAfter) {
                    done = true;
                    this.finishWithReset(req, request);
                    resolve(null);
                } else if (received > this.options.maxBodyBytes) {
                    done = true;
                    const problem = rejection(
                        400,
                        'EntityTooLarge',
                        'Your proposed upload exceeds the maximum allowed size.'
                    );
                    bump(this.stats.rejected, problem.code);
                    this.sendError(res, request, problem, true);
                    resolve(null);
                }
            });
            req.on('end', () => {
                if (done) {
                    return;
                }
                done = true;
                if (resetAfter !== Infinity) {
                    // The body was shorter than the byte count: reset once it has all arrived.
                    this.finishWithReset(req, request);
                    resolve(null);
                    return;
                }
                resolve(Buffer.concat(chunks, received));
            });
            const onGone = () => {
                if (!done) {
                    done = true;
                    this.count('client_gone', null);
                    resolve(null);
                }
            };
            req.on('error', onGone);
            req.on('close', onGone);
        });
    }

    async handleVerified(req, res, request) {
        const problem = verifyRequest(request, this.options, Date.now());
        if (problem) {
            bump(this.stats.rejected, problem.code);
            this.sendError(res, request, problem, false);
            return;
        }

        let deleteKeys = [];
        if (request.operation === 'DeleteObjects') {
            deleteKeys = deleteObjectsKeys(request.body);
            request.prefixes = [...new Set(deleteKeys.map(keyPrefix))];
            const counts = this.stats.delete_objects;
            counts.requests++;
            counts.keys += deleteKeys.length;
            for (const deleted of deleteKeys) {
                bump(counts.by_prefix, keyPrefix(deleted));
            }
        }

        const delay = this.takeFault('delay', request, null);
        if (delay) {
            await new Promise((resolve) => setTimeout(resolve, delay.ms));
            if (req.socket.destroyed) {
                this.count('client_gone', null);
                return;
            }
        }
        if (this.takeFault('slowdown', request, null)) {
            const problem = rejection(503, 'SlowDown', 'Please reduce your request rate.');
            this.sendError(res, request, problem, false, 'slowdown');
            return;
        }
        const resetAfter = this.takeFault('reset', request, (fault) => fault.when === 'after');
        this.forward(req, res, request, resetAfter !== null, deleteKeys);
    }

    forward(req, res, request, resetAfterForward, deleteKeys) {
        const headers = forwardHeaders(request.rawHeaders, this.options, request.body.length);
        const upstream = http.request({
            host: LISTEN_HOST,
            port: this.options.s3rverPort,
            method: request.method,
            path: req.url,
            headers,
            agent: this.upstreamAgent,
        });
        // A client that goes away mid-answer takes the upstream exchange with it.
        res.on('close', () => {
            if (!res.writableFinished) {
                upstream.destroy();
            }
        });
        upstream.on('response', (answer) => {
            const ok = answer.statusCode >= 200 && answer.statusCode < 300;
            if (ok) {
                this.countSuccess(request, deleteKeys);
            }
            if (resetAfterForward) {
                // The operation took effect but the client never learns it: the case a retrying
                // client must handle idempotently.
                answer.resume();
                this.finishWithReset(req, request);
                return;
            }
            this.count('forwarded', answer.statusCode);
            res.writeHead(answer.statusCode, responseHeaders(answer.rawHeaders));
            answer.pipe(res);
            this.logRequest(request, answer.statusCode, null);
        });
        upstream.on('error', (error) => {
            if (req.socket.destroyed) {
                return;
            }
            if (res.headersSent) {
                // The answer broke off halfway: the client must not take it for a whole one.
                resetSocket(req.socket);
                return;
            }
            log({
                level: 'warn',
                event: 'upstream_failed',
                request: request.id,
                error: error.message,
            });
            const problem = rejection(
                503,
                'ServiceUnavailable',
                'The storage behind this front did not answer.'
            );
            this.sendError(res, request, problem, false, 'upstream_error');
        });
        upstream.end(request.body);
    }

    countSuccess(request, deleteKeys) {
        if (request.key !== null) {
            bump(this.stats.by_key_ok, `${request.method} ${keyPrefix(request.key)}`);
        }
        if (request.operation === 'DeleteObjects') {
            const counts = this.stats.delete_objects;
            counts.requests_ok++;
            counts.keys_ok += deleteKeys.length;
            for (const deleted of deleteKeys) {
                bump(counts.by_prefix_ok, keyPrefix(deleted));
            }
        }
    }

    finishWithReset(req, request) {
        this.count('reset', null);
        log({
            level: 'info',
            event: 'request_reset',
            request: request.id,
            method: request.method,
            path: request.path,
            operation: request.operation,
        });
        resetSocket(req.socket);
    }

    count(outcome, status) {
        bump(this.stats.outcomes, outcome);
        if (status !== null) {
            bump(this.stats.by_status, String(status));
        }
    }

    sendError(res, request, problem, closeAfter, outcome) {
        this.count(outcome || 'rejected', problem.status);
        const body = request.method === 'HEAD' ? '' : errorXml(problem, request);
        const headers = {
            'Content-Type': 'application/xml',
            'Content-Length': Buffer.byteLength(body),
            'x-amz-request-id': request.id,
        };
        if (closeAfter) {
            headers.Connection = 'close';
        }
        if (problem.code === 'SlowDown') {
            headers['Retry-After'] = '1';
        }
        res.writeHead(problem.status, headers);
        res.end(body);
        this.logRequest(request, problem.status, problem);
    }

    logRequest(request, status, problem) {
        if (!problem && !this.options.verbose) {
            return;
        }
        const fields = {
            level: problem && problem.status !== 503 ? 'warn' : 'info',
            event: problem ? 'request_refused' : 'request',
            request: request.id,
            method: request.method,
            path: request.path,
            operation: request.operation,
            status,
            ms: Date.now() - request.started,
        };
        if (problem) {
            fields.code = problem.code;
            fields.message = problem.message;
            if (problem.extra.CanonicalRequest !== undefined) {
                fields.canonical_request = problem.extra.CanonicalRequest;
            }
        }
        log(fields);
    }

    onControlRequest(req, res) {
        const chunks = [];
        req.on('data', (chunk) => chunks.push(chunk));
        req.on('end', () => {
            const { path } = splitUrl(req.url);
            const body = Buffer.concat(chunks).toString('utf8');
            this.routeControl(req.method, path, body, res).catch((error) => {
                sendJson(res, 400, { error: error.message });
            });
        });
    }

    async routeControl(method, path, body, res) {
        const faultMatch = /^\/fault\/(\d+)$/.exec(path);
        if (method === 'GET' && path === '/health') {
            sendJson(res, 200, {
                status: 'ok',
                listening: this.s3Listener !== null,
                s3_port: this.s3Port,
                s3rver_port: this.options.s3rverPort,
            });
        } else if (method === 'GET' && path === '/stats') {
            sendJson(res, 200, { ...this.stats, active_faults: this.faults.map(publicFault) });
        } else if (method === 'POST' && path === '/reset-stats') {
            this.stats = newStats();
            sendJson(res, 200, { status: 'ok' });
        } else if (method === 'GET' && (path === '/fault' || path === '/faults')) {
            sendJson(res, 200, { faults: this.faults.map(publicFault) });
        } else if (method === 'POST' && path === '/fault') {
            const fault = this.addFault(JSON.parse(body === '' ? 'null' : body));
            log({ level: 'info', event: 'fault_added', id: fault.id, mode: fault.mode });
            sendJson(res, 200, publicFault(fault));
        } else if (method === 'DELETE' && path === '/fault') {
            const removed = this.removeFault(null);
            await this.syncListener();
            sendJson(res, 200, { removed });
        } else if (method === 'DELETE' && faultMatch) {
            const removed = this.removeFault(Number(faultMatch[1]));
            await this.syncListener();
            sendJson(res, removed > 0 ? 200 : 404, { removed });
        } else {
            sendJson(res, 404, { error: `no route for ${method} ${path}` });
        }
    }

    close() {
        for (const fault of this.faults) {
            clearTimeout(fault.timer);
        }
        this.faults = [];
        if (this.s3Listener !== null) {
            this.s3Listener.close();
        }
        this.dropClientConnections();
        this.controlServer.close();
        this.upstreamAgent.destroy();
    }
}

function requestId(serial) {
    return `${process.pid.toString(16)}-${serial.toString(16).padStart(8, '0')}`;
}

// Ends a connection with a TCP reset rather than an orderly close, so the client sees
// "connection reset by peer", as when a server or a middlebox drops it.
function resetSocket(socket) {
    if (socket.destroyed) {
        return;
    }
    if (typeof socket.resetAndDestroy === 'function') {
        socket.resetAndDestroy();
    } else {
        socket.destroy();
    }
}

// The request headers as s3rver gets them. The body is forwarded whole with its length. s3rver
// checks that the access key is its own and nothing else of the signature, so the verified
// Authorization header goes on with only the access key swapped.
function forwardHeaders(rawHeaders, options, bodyLength) {
    const headers = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
        const name = rawHeaders[i].toLowerCase();
        let value = rawHeaders[i + 1];
        if (HOP_HEADERS.has(name) || name === 'content-length') {
            continue;
        }
        if (name === 'host') {
            value = `${LISTEN_HOST}:${options.s3rverPort}`;
        }
        if (name === 'authorization') {
            value = value.replace(/Credential=[^/]*\//, `Credential=${S3RVER_ACCESS_KEY}/`);
        }
        headers.push(rawHeaders[i], value);
    }
    headers.push('Content-Length', String(bodyLength));
    return headers;
}

function responseHeaders(rawHeaders) {
    const headers = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
        if (!HOP_HEADERS.has(rawHeaders[i].toLowerCase())) {
            headers.push(rawHeaders[i], rawHeaders[i + 1]);
        }
    }
    return headers;
}

function escapeXml(text) {
    return String(text)
        .replace(/&/g, '&amp;')
        .replace(/</g, '&lt;')
        .replace(/>/g, '&gt;')
        .replace(/"/g, '&quot;');
}

function errorXml(problem, request) {
    let extra = '';
    for (const [name, value] of Object.entries(problem.extra)) {
        extra += `<${name}>${escapeXml(value)}</${name}>`;
    }
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' +
        `<Error><Code>${problem.code}</Code><Message>${escapeXml(problem.message)}</Message>` +
        `${extra}<Resource>${escapeXml(request.path)}</Resource>` +
        `<RequestId>${request.id}</RequestId></Error>`
    );
}

function sendJson(res, status, value) {
    const body = JSON.stringify(value) + '\n';
    res.writeHead(status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
}

async function main() {
    let options;
    try {
        options = parseArguments(process.argv.slice(2));
    } catch (error) {
        process.stderr.write(`front.js: ${error.message}\n\n${USAGE}\n`);
        process.exit(2);
    }
    const front = new Front(options);
    const ports = await front.start();
    process.stdout.write(JSON.stringify(ports) + '\n');
    log({
        level: 'info',
        event: 'started',
        ...ports,
        access_key: options.accessKey,
        region: options.region,
    });

    const stop = (signal) => {
        log({ level: 'info', event: 'stopping', signal });
        front.close();
        process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

if (require.main === module) {
    main().catch((error) => {
        process.stderr.write(`front.js: ${error.stack || error.message}\n`);
        process.exit(1);
    });
}

module.exports = { verifyRequest, canonicalQuery, canonicalUri, parseFault };
