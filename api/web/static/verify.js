/*
 * Open Policy Ledger: check, in the reader's own browser, that what a page shows is in the
 * signed log. Trusts nothing the server says: only the log's public key (the one the page
 * names, or one the reader pastes in) and the browser's own WebCrypto.
 *
 * For every entry behind the page (data-indexes on a [data-verify] panel) it fetches
 * /entries/{index} (the entry's exact bytes, its RFC 9162 inclusion proof and the signed
 * checkpoint), then checks:
 *   1. the checkpoint is a C2SP signed note with a valid Ed25519 signature by the log's key
 *      (key id = SHA-256(name || 0x0A || 0x01 || public key)[:4]) and names this log;
 *   2. the leaf hash SHA-256(0x00 || entry bytes), with the inclusion proof, gives the
 *      checkpoint's root (RFC 9162 section 2.1.3.2);
 *   3. the entry's own index, subject and prev link fit;
 *   4. what the page displays ([data-check-entry] elements) is what the entries say.
 * Witness cosignatures (cosignature/v1) are checked for the witness keys the page names.
 *
 * On a static mirror written by `ledger export-site` (the page carries
 * <meta name="ledger-static-mirror">) there is no API: the same checks run on the mirror's
 * C2SP tlog-tiles instead. The signed `checkpoint` file gives the size and root; each entry's
 * bytes come from its entry bundle (tile/entries/...) and its inclusion proof is computed here
 * from the hash tiles (tile/<level>/...), all fetched relative to this script's own URL, so
 * the mirror works under any path prefix.
 *
 * Publication pages also get a file check: the SHA-256 of a file the reader picks, computed
 * locally, against the hash the page records.
 *
 * Plain ES2020, no dependencies; progressive enhancement only (everything it needs is
 * hidden until it runs).
 */
(function () {
  "use strict";

  var encoder = new TextEncoder();
  var ED25519_TYPE = 0x01;
  var COSIGNATURE_TYPE = 0x04;
  var EM_DASH_PREFIX = "\u2014 ";
  var CONCURRENCY = 6;
  var TILE_WIDTH = 256;
  // The mirror's root is the directory above static/verify.js (read while the script runs).
  var SCRIPT_URL = document.currentScript && document.currentScript.src ? document.currentScript.src : "";

  class VerifyError extends Error {}

  function fail(message) {
    throw new VerifyError(message);
  }

  // Bytes -------------------------------------------------------------------------------------

  function concat() {
    var total = 0;
    var i;
    for (i = 0; i < arguments.length; i++) total += arguments[i].length;
    var out = new Uint8Array(total);
    var at = 0;
    for (i = 0; i < arguments.length; i++) {
      out.set(arguments[i], at);
      at += arguments[i].length;
    }
    return out;
  }

  function equalBytes(a, b) {
    if (a.length !== b.length) return false;
    var diff = 0;
    for (var i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }

  function hex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) out += bytes[i].toString(16).padStart(2, "0");
    return out;
  }

  var B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

  /* Standard base64 in its one canonical spelling (VERIFYING.md section 1). */
  function b64decode(text, what) {
    if (typeof text !== "string" || !B64.test(text)) fail(what + " is not base64");
    var binary = atob(text);
    var out = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    if (b64encode(out) !== text) fail(what + " is not canonical base64");
    return out;
  }

  function b64encode(bytes) {
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary);
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  // Merkle tree (RFC 9162 section 2.1) -----------------------------------------------------------

  function hashLeaf(entryBytes) {
    return sha256(concat(new Uint8Array([0]), entryBytes));
  }

  function hashNode(left, right) {
    return sha256(concat(new Uint8Array([1]), left, right));
  }

  function half(n) {
    return Math.floor(n / 2);
  }

  function isOdd(n) {
    return n % 2 === 1;
  }

  /* The root an inclusion proof leads to from leaf hash `leaf` at `index` in a tree of
     `size` leaves (RFC 9162 section 2.1.3.2). Plain arithmetic, not 32-bit bit operations:
     indexes go up to 2^53. */
  async function rootFromInclusionProof(leaf, index, size, proof) {
    if (!(index >= 0 && index < size)) fail("index " + index + " is not inside a tree of size " + size);
    var fn = index;
    var sn = size - 1;
    var r = leaf;
    for (var i = 0; i < proof.length; i++) {
      var p = proof[i];
      if (sn === 0) fail("the inclusion proof is longer than the tree is deep");
      if (isOdd(fn) || fn === sn) {
        r = await hashNode(p, r);
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      } else {
        r = await hashNode(r, p);
      }
      fn = half(fn);
      sn = half(sn);
    }
    if (sn !== 0) fail("the inclusion proof is too short for the tree");
    return r;
  }

  // Keys and signed notes (C2SP signed-note, tlog-checkpoint, tlog-cosignature) -------------------

  async function keyId(name, type, publicKey) {
    var digest = await sha256(concat(encoder.encode(name), new Uint8Array([0x0a, type]), publicKey));
    return digest.slice(0, 4);
  }

  /* A verifier key `name+hexkeyid+base64(type || public key)`. */
  async function parseVerifierKey(vkey, type) {
    var text = String(vkey || "").trim();
    var first = text.indexOf("+");
    var second = first < 0 ? -1 : text.indexOf("+", first + 1);
    if (first <= 0 || second < 0) fail("the key “" + text + "” is not a verifier key (name+keyid+key)");
    var name = text.slice(0, first);
    var idHex = text.slice(first + 1, second);
    if (!/^[0-9a-f]{8}$/.test(idHex)) fail("the key's id is not 8 lowercase hex digits");
    var raw = b64decode(text.slice(second + 1), "the key");
    if (raw.length !== 33 || raw[0] !== type) fail("the key is not an Ed25519 key of the expected type");
    var publicKey = raw.slice(1);
    var id = await keyId(name, type, publicKey);
    if (hex(id) !== idHex) fail("the key's id does not match its name and key");
    var cryptoKey;
    try {
      cryptoKey = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    } catch (error) {
      fail("this browser cannot check Ed25519 signatures (" + error.message + ")");
    }
    return { name: name, id: id, idHex: idHex, publicKey: publicKey, cryptoKey: cryptoKey, vkey: text };
  }

  function verifyEd25519(key, signature, message) {
    return crypto.subtle.verify({ name: "Ed25519" }, key.cryptoKey, signature, message);
  }

  /* Split a signed note into its text (with its final newline) and signature lines. */
  function splitNote(note) {
    if (typeof note !== "string" || !note) fail("the entry came without a signed checkpoint");
    if (note.indexOf("\r") >= 0) fail("the checkpoint contains a carriage return");
    var cut = note.lastIndexOf("\n\n");
    if (cut < 0) fail("the checkpoint is not a signed note (no blank line before its signatures)");
    var text = note.slice(0, cut + 1);
    if (text.endsWith("\n\n")) fail("the checkpoint's text ends in a blank line");
    var rest = note.slice(cut + 2);
    if (!rest.endsWith("\n")) fail("the checkpoint's last signature line does not end in a newline");
    var lines = rest.slice(0, -1).split("\n");
    if (lines.length > 100) fail("the checkpoint has too many signature lines");
    var signatures = lines.map(function (line) {
      if (!line.startsWith(EM_DASH_PREFIX)) fail("a checkpoint signature line does not start with “— ”");
      var body = line.slice(EM_DASH_PREFIX.length);
      var space = body.indexOf(" ");
      if (space <= 0) fail("a checkpoint signature line has no key name");
      var name = body.slice(0, space);
      var raw = b64decode(body.slice(space + 1), "a checkpoint signature");
      if (raw.length < 5) fail("a checkpoint signature is too short");
      return { name: name, id: raw.slice(0, 4), signature: raw.slice(4) };
    });
    return { text: text, signatures: signatures };
  }

  function parseCheckpoint(text) {
    var lines = text.slice(0, -1).split("\n");
    if (lines.length < 3) fail("the checkpoint does not have origin, size and root lines");
    var origin = lines[0];
    if (!origin) fail("the checkpoint's origin is empty");
    if (!/^(0|[1-9][0-9]{0,18})$/.test(lines[1])) fail("the checkpoint's size is not a number");
    var size = Number(lines[1]);
    if (!Number.isSafeInteger(size)) fail("the checkpoint's size is too large for this checker");
    var root = b64decode(lines[2], "the checkpoint's root");
    if (root.length !== 32) fail("the checkpoint's root is not 32 bytes");
    for (var i = 3; i < lines.length; i++) {
      if (!lines[i]) fail("the checkpoint has an empty extension line");
    }
    return { origin: origin, size: size, root: root };
  }

  function bigEndian64(bytes) {
    var value = 0;
    for (var i = 0; i < 8; i++) value = value * 256 + bytes[i];
    return value;
  }

  /* Verify a signed checkpoint: the log's signature must be there and good; cosignatures of
     the given witnesses, where present, must be good too. */
  async function verifyCheckpoint(note, logKey, witnesses) {
    var parts = splitNote(note);
    var textBytes = encoder.encode(parts.text);
    var signed = false;
    var cosigned = [];
    for (var i = 0; i < parts.signatures.length; i++) {
      var line = parts.signatures[i];
      if (line.name === logKey.name && equalBytes(line.id, logKey.id)) {
        if (line.signature.length !== 64 || !(await verifyEd25519(logKey, line.signature, textBytes))) {
          fail("the checkpoint's signature does not verify with the log's key " + logKey.name + " (" + logKey.idHex + ")");
        }
        signed = true;
        continue;
      }
      for (var w = 0; w < witnesses.length; w++) {
        var witness = witnesses[w];
        if (line.name !== witness.name || !equalBytes(line.id, witness.id)) continue;
        if (line.signature.length !== 72) fail("the cosignature of witness " + witness.name + " is malformed");
        var timestamp = bigEndian64(line.signature.slice(0, 8));
        var message = concat(encoder.encode("cosignature/v1\ntime " + timestamp + "\n"), textBytes);
        if (!(await verifyEd25519(witness, line.signature.slice(8), message))) {
          fail("the cosignature of witness " + witness.name + " does not verify");
        }
        cosigned.push(witness.name);
      }
    }
    if (!signed) fail("the checkpoint is not signed by the log's key " + logKey.name + " (" + logKey.idHex + ")");
    var checkpoint = parseCheckpoint(parts.text);
    checkpoint.cosigned = cosigned;
    return checkpoint;
  }

  // Fetching ---------------------------------------------------------------------------------

  async function getText(url, what) {
    var response;
    try {
      response = await fetch(url, { credentials: "omit", cache: "no-store", headers: { Accept: "application/json, text/plain" } });
    } catch (error) {
      fail("could not fetch " + what + " (" + error.message + ")");
    }
    if (!response.ok) fail("could not fetch " + what + " (HTTP " + response.status + ")");
    return response.text();
  }

  async function getEntry(base, index, size) {
    var url = base + "/entries/" + index + (size === null ? "" : "?size=" + size);
    var text = await getText(url, "entry " + index);
    var body;
    try {
      body = JSON.parse(text);
    } catch (error) {
      fail("entry " + index + ": the server's answer is not JSON");
    }
    if (!body || typeof body.entry !== "string" || !Array.isArray(body.inclusion_proof)) {
      fail("entry " + index + ": the server's answer lacks the entry or its proof");
    }
    return body;
  }

  // A static mirror: entries and proofs from C2SP tlog-tiles ---------------------------------

  /* The mirror's root URL (ending in "/") when this page is part of a static mirror. */
  function mirrorRoot() {
    if (!document.querySelector('meta[name="ledger-static-mirror"]') || !SCRIPT_URL) return null;
    return new URL("../", SCRIPT_URL).href;
  }

  async function getBytes(url, what) {
    var response;
    try {
      response = await fetch(url, { credentials: "omit", cache: "no-store" });
    } catch (error) {
      fail("could not fetch " + what + " (" + error.message + ")");
    }
    if (!response.ok) fail("could not fetch " + what + " (HTTP " + response.status + ")");
    return new Uint8Array(await response.arrayBuffer());
  }

  /* tlog-tiles index path: 1234067 → x001/x234/067. */
  function tileIndexPath(index) {
    var digits = String(index);
    while (digits.length % 3) digits = "0" + digits;
    var parts = [];
    for (var i = 0; i < digits.length; i += 3) parts.push(digits.slice(i, i + 3));
    return parts
      .map(function (part, i) {
        return i < parts.length - 1 ? "x" + part : part;
      })
      .join("/");
  }

  function isPowerOfTwo(n) {
    var k = 1;
    while (k < n) k *= 2;
    return k === n;
  }

  function largestPowerOfTwoBelow(n) {
    var k = 1;
    while (k * 2 < n) k *= 2;
    return k;
  }

  /* Reads a tree of `size` leaves from tiles under `root`: entries, and RFC 9162 proofs
     computed from the stored subtree hashes (each tile fetched once). */
  function TileReader(root, size) {
    this.root = root;
    this.size = size;
    this.fetched = {};
  }

  TileReader.prototype.tile = async function (level, index) {
    // Entry bundles are numbered like the level-0 hash tiles (one leaf per entry).
    var count = Math.floor(this.size / Math.pow(TILE_WIDTH, level === "entries" ? 0 : level));
    var width = Math.min(TILE_WIDTH, count - index * TILE_WIDTH);
    if (!(width > 0)) fail("the tree of size " + this.size + " has no tile " + level + "/" + index);
    var path =
      "tile/" + (level === "entries" ? "entries" : level) + "/" + tileIndexPath(index) +
      (width < TILE_WIDTH ? ".p/" + width : "");
    if (!this.fetched[path]) this.fetched[path] = getBytes(this.root + path, "the mirror's " + path);
    return { path: path, width: width, bytes: await this.fetched[path] };
  };

  /* The exact bytes of entry `index`, from its entry bundle (2-byte big-endian lengths). */
  TileReader.prototype.entry = async function (index) {
    var found = await this.tile("entries", Math.floor(index / TILE_WIDTH));
    var bytes = found.bytes;
    var at = 0;
    var want = index % TILE_WIDTH;
    for (var i = 0; i < found.width; i++) {
      if (at + 2 > bytes.length) fail("the entry bundle " + found.path + " is cut short");
      var length = bytes[at] * 256 + bytes[at + 1];
      if (at + 2 + length > bytes.length) fail("the entry bundle " + found.path + " is cut short");
      if (i === want) return bytes.slice(at + 2, at + 2 + length);
      at += 2 + length;
    }
    fail("the entry bundle " + found.path + " does not hold entry " + index);
  };

  /* The hash of the perfect subtree of 2^height leaves starting at leaf `start`. */
  TileReader.prototype.perfect = async function (start, height) {
    var level = Math.floor(height / 8);
    var rest = height - 8 * level;
    var first = start / Math.pow(TILE_WIDTH, level);
    var found = await this.tile(level, Math.floor(first / TILE_WIDTH));
    if (found.bytes.length !== found.width * 32) {
      fail("the hash tile " + found.path + " is not " + found.width * 32 + " bytes long");
    }
    var offset = first % TILE_WIDTH;
    var layer = [];
    for (var i = 0; i < Math.pow(2, rest); i++) {
      layer.push(found.bytes.slice((offset + i) * 32, (offset + i + 1) * 32));
    }
    while (layer.length > 1) {
      var next = [];
      for (var j = 0; j < layer.length; j += 2) next.push(await hashNode(layer[j], layer[j + 1]));
      layer = next;
    }
    return layer[0];
  };

  /* MTH(D[lo:hi]) (RFC 9162 section 2.1.1), from the tiles. */
  TileReader.prototype.subtree = async function (lo, hi) {
    var n = hi - lo;
    if (isPowerOfTwo(n)) {
      var height = 0;
      while (Math.pow(2, height) < n) height++;
      return this.perfect(lo, height);
    }
    var k = largestPowerOfTwoBelow(n);
    return hashNode(await this.subtree(lo, lo + k), await this.subtree(lo + k, hi));
  };

  /* PATH(m, D[lo:hi]) (RFC 9162 section 2.1.3.1), leaf first. */
  TileReader.prototype.path = async function (m, lo, hi) {
    var n = hi - lo;
    if (n <= 1) return [];
    var k = largestPowerOfTwoBelow(n);
    if (m - lo < k) return (await this.path(m, lo, lo + k)).concat([await this.subtree(lo + k, hi)]);
    return (await this.path(m, lo + k, hi)).concat([await this.subtree(lo, lo + k)]);
  };

  /* The same answer /entries/{index} gives, made from the mirror's tiles. */
  async function entryFromTiles(tiles, index, note) {
    if (!(index >= 0 && index < tiles.size)) {
      fail("entry " + index + " is not in the mirror's checkpoint of size " + tiles.size);
    }
    var bytes = await tiles.entry(index);
    var text;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (error) {
      fail("entry " + index + " in the mirror's entry bundle is not UTF-8 text");
    }
    var proof = await tiles.path(index, 0, tiles.size);
    return {
      index: index,
      entry: text,
      tree_size: tiles.size,
      inclusion_proof: proof.map(b64encode),
      checkpoint: note,
    };
  }

  /* Run `work` over `items`, at most `limit` at a time, keeping the order of results. */
  async function mapLimited(items, limit, work) {
    var results = new Array(items.length);
    var next = 0;
    async function worker() {
      while (next < items.length) {
        var mine = next++;
        results[mine] = await work(items[mine], mine);
      }
    }
    var workers = [];
    for (var i = 0; i < Math.min(limit, items.length); i++) workers.push(worker());
    await Promise.all(workers);
    return results;
  }

  // What the page shows -------------------------------------------------------------------------

  function valueAt(object, path) {
    var value = object;
    var parts = path.split(".");
    for (var i = 0; i < parts.length; i++) {
      if (value === null || typeof value !== "object" || !Object.prototype.hasOwnProperty.call(value, parts[i])) {
        return undefined;
      }
      value = value[parts[i]];
    }
    return value;
  }

  function normalise(text) {
    return String(text).replace(/\r\n?/g, "\n").trim();
  }

  function shorten(text) {
    var flat = String(text).replace(/\s+/g, " ");
    return flat.length > 80 ? flat.slice(0, 77) + "…" : flat;
  }

  function pageChecks(root) {
    return Array.prototype.map.call(root.querySelectorAll("[data-check-entry][data-check-path]"), function (element) {
      return {
        index: Number(element.getAttribute("data-check-entry")),
        path: element.getAttribute("data-check-path"),
        expected: element.hasAttribute("data-check-value")
          ? element.getAttribute("data-check-value")
          : element.textContent,
        shown: element.hasAttribute("data-check-value") ? "value" : "text",
      };
    });
  }

  function checkShown(check, entry) {
    var actual = valueAt(entry, check.path);
    if (actual === undefined || actual === null || typeof actual === "object") {
      fail("entry " + check.index + " has no " + check.path + " to match what the page shows");
    }
    if (normalise(actual) !== normalise(check.expected)) {
      fail(
        "entry " + check.index + ": the page shows “" + shorten(check.expected) + "” but the entry's " +
          check.path + " is “" + shorten(actual) + "”"
      );
    }
  }

  // The whole check ----------------------------------------------------------------------------

  function parseIndexes(text) {
    var seen = {};
    return String(text || "")
      .split(/\s+/)
      .filter(function (part) {
        return /^\d+$/.test(part);
      })
      .map(Number)
      .filter(function (n) {
        if (seen[n]) return false;
        seen[n] = true;
        return true;
      })
      .sort(function (a, b) {
        return a - b;
      });
  }

  async function chooseKey(panel, base, report, mirror) {
    var typed = panel.querySelector("[data-verify-key]");
    var given = typed && typed.value.trim();
    if (given) {
      report.keySource = "the key you gave";
      return parseVerifierKey(given, ED25519_TYPE);
    }
    var pinned = panel.getAttribute("data-pinned-key");
    var keyUrl = mirror ? mirror + "public-key" : base + "/public-key";
    var served = (await getText(keyUrl, "the log's public key")).trim();
    if (pinned) {
      if (served !== pinned.trim()) {
        fail("the key served at /public-key is not the key this page names");
      }
      report.keySource = "the key this page names";
      return parseVerifierKey(pinned, ED25519_TYPE);
    }
    report.keySource = "the key served at /public-key";
    return parseVerifierKey(served, ED25519_TYPE);
  }

  /* Verify the entries behind a panel; resolves to a report, or rejects with VerifyError. */
  async function verifyPanel(panel, options) {
    options = options || {};
    var base = options.base || "";
    var progress = options.progress || function () {};
    if (!window.crypto || !crypto.subtle) {
      fail("this browser offers no Web Cryptography here (it needs a secure, https:// page)");
    }
    var indexes = parseIndexes(panel.getAttribute("data-indexes"));
    if (!indexes.length) fail("this page names no entries to check");
    var mirror = options.mirror !== undefined ? options.mirror : mirrorRoot();
    var report = { entries: indexes.length, shownChecked: 0, keySource: "", mirror: Boolean(mirror) };
    var key = await chooseKey(panel, base, report, mirror);
    var witnesses = [];
    var witnessKeys = String(panel.getAttribute("data-witness-keys") || "").split(/\s+/).filter(Boolean);
    for (var w = 0; w < witnessKeys.length; w++) {
      witnesses.push(await parseVerifierKey(witnessKeys[w], COSIGNATURE_TYPE));
    }
    var origin = panel.getAttribute("data-log-origin") || key.name;
    var subject = panel.getAttribute("data-subject");

    var size;
    var answers;
    if (mirror) {
      // Every proof goes to the mirror's one checkpoint (its signature is checked below).
      progress("Fetching the mirror's checkpoint…");
      var note = await getText(mirror + "checkpoint", "the mirror's checkpoint");
      size = parseCheckpoint(splitNote(note).text).size;
      if (size <= 0) fail("the mirror's checkpoint is for an empty log");
      var tiles = new TileReader(mirror, size);
      progress("Reading " + indexes.length + " " + (indexes.length === 1 ? "entry" : "entries") + " and proofs from the mirror's tiles…");
      answers = await mapLimited(indexes, CONCURRENCY, function (index) {
        return entryFromTiles(tiles, index, note);
      });
    } else {
      // Every proof goes to one checkpoint: the size the first answer names.
      progress("Fetching entry " + indexes[0] + "…");
      var first = await getEntry(base, indexes[0], null);
      size = first.tree_size;
      if (!Number.isSafeInteger(size) || size <= 0) fail("entry " + indexes[0] + ": the tree size is not valid");
      answers = [first].concat(
        await mapLimited(indexes.slice(1), CONCURRENCY, function (index) {
          return getEntry(base, index, size);
        })
      );
    }

    var checkpoints = {};
    var entries = {};
    var checkpoint = null;
    for (var i = 0; i < indexes.length; i++) {
      var index = indexes[i];
      var answer = answers[i];
      progress("Checking entry " + index + " (" + (i + 1) + " of " + indexes.length + ")…");
      if (answer.index !== index) fail("asked for entry " + index + " but got entry " + answer.index);
      if (answer.tree_size !== size) fail("entry " + index + ": its proof is for another tree size");
      if (!checkpoints[answer.checkpoint]) {
        checkpoints[answer.checkpoint] = await verifyCheckpoint(answer.checkpoint, key, witnesses);
      }
      checkpoint = checkpoints[answer.checkpoint];
      if (checkpoint.origin !== origin) {
        fail("the checkpoint's origin “" + checkpoint.origin + "” is not this log's name “" + origin + "”");
      }
      if (checkpoint.size !== size) fail("entry " + index + ": the checkpoint is for size " + checkpoint.size + ", not " + size);
      var bytes = encoder.encode(answer.entry);
      var proof = answer.inclusion_proof.map(function (item, position) {
        var hash = b64decode(item, "entry " + index + ": inclusion proof hash " + position);
        if (hash.length !== 32) fail("entry " + index + ": inclusion proof hash " + position + " is not 32 bytes");
        return hash;
      });
      var root = await rootFromInclusionProof(await hashLeaf(bytes), index, size, proof);
      if (!equalBytes(root, checkpoint.root)) {
        fail("entry " + index + ": its bytes and inclusion proof do not lead to the root signed in the checkpoint");
      }
      var parsed;
      try {
        parsed = JSON.parse(answer.entry);
      } catch (error) {
        fail("entry " + index + " is not valid JSON");
      }
      if (parsed.index !== index) fail("entry " + index + " says it is entry " + parsed.index);
      if (subject && (!parsed.subject || parsed.subject.id !== subject)) {
        fail("entry " + index + " is not about the record this page shows");
      }
      entries[index] = { parsed: parsed, hash: await sha256(bytes) };
    }

    // Neighbouring entries must be chained.
    for (var j = 1; j < indexes.length; j++) {
      if (indexes[j] === indexes[j - 1] + 1) {
        var previous = entries[indexes[j - 1]];
        if (entries[indexes[j]].parsed.prev !== hex(previous.hash)) {
          fail("entry " + indexes[j] + ": its prev link is not the hash of entry " + indexes[j - 1]);
        }
      }
    }

    // What the page shows.
    var checks = pageChecks(options.root || document);
    for (var c = 0; c < checks.length; c++) {
      var check = checks[c];
      if (!entries[check.index]) fail("the page shows something from entry " + check.index + ", which it does not name");
      checkShown(check, entries[check.index].parsed);
    }
    report.shownChecked = checks.length;
    report.size = size;
    report.keyName = key.name;
    report.keyId = key.idHex;
    report.cosigned = checkpoint ? checkpoint.cosigned : [];
    report.witnesses = witnesses.length;
    return report;
  }

  function summary(report) {
    var parts = [
      "Verified: " + report.entries + " " + (report.entries === 1 ? "entry is" : "entries are") +
        " in the log signed by " + report.keyName + " (key " + report.keyId + "), checkpoint size " + report.size + ".",
    ];
    if (report.shownChecked) {
      parts.push(
        report.shownChecked + " " + (report.shownChecked === 1 ? "value" : "values") +
          " shown on this page match the entries."
      );
    }
    if (report.witnesses) {
      parts.push("Cosigned by " + report.cosigned.length + " of " + report.witnesses + " witnesses.");
    }
    return parts.join(" ");
  }

  // Wiring ---------------------------------------------------------------------------------

  function setResult(element, text, state) {
    element.textContent = text;
    element.classList.remove("is-ok", "is-failed", "is-working");
    if (state) element.classList.add("is-" + state);
  }

  function details(panel, report) {
    var box = panel.querySelector("[data-verify-details]");
    if (!box) return;
    box.textContent = "";
    if (!report) return;
    var list = document.createElement("ul");
    list.className = "verify-details";
    [
      "Key used: " + report.keySource + ".",
      report.mirror
        ? "Each entry's bytes come from the mirror's entry bundles; its RFC 9162 inclusion proof was computed in your browser from the mirror's hash tiles."
        : "Each entry's bytes and inclusion proof come from the log's API.",
      "Each entry's SHA-256 leaf hash, with its RFC 9162 inclusion proof, gives the root in the checkpoint.",
      "The checkpoint's Ed25519 signature is the log's, and it names this log.",
    ].forEach(function (line) {
      var item = document.createElement("li");
      item.textContent = line;
      list.appendChild(item);
    });
    box.appendChild(list);
  }

  function wirePanel(panel) {
    var controls = panel.querySelector("[data-verify-controls]");
    var button = panel.querySelector("[data-verify-button]");
    var result = panel.querySelector("[data-verify-result]");
    if (!controls || !button || !result) return;
    controls.hidden = false;
    var withoutScript = panel.querySelector("[data-verify-nojs]");
    if (withoutScript) withoutScript.hidden = true;
    button.addEventListener("click", async function () {
      button.disabled = true;
      details(panel, null);
      setResult(result, "Checking…", "working");
      try {
        var report = await verifyPanel(panel, {
          progress: function (text) {
            setResult(result, text, "working");
          },
        });
        setResult(result, summary(report), "ok");
        details(panel, report);
      } catch (error) {
        var reason = error instanceof VerifyError ? error.message : "unexpected error: " + error;
        setResult(result, "Verification failed: " + reason + ".", "failed");
      } finally {
        button.disabled = false;
      }
    });
  }

  function wireFileCheck(form) {
    var input = form.querySelector("[data-file-input]");
    var result = form.querySelector("[data-file-result]");
    var expected = String(form.getAttribute("data-sha256") || "").toLowerCase();
    if (!input || !result || !expected) return;
    if (!window.crypto || !crypto.subtle) return; // stays hidden: the command line still works
    form.hidden = false;
    async function check(event) {
      if (event) event.preventDefault();
      var file = input.files && input.files[0];
      if (!file) {
        setResult(result, "Choose a file first.", "failed");
        return;
      }
      setResult(result, "Working out the SHA-256 of " + file.name + "…", "working");
      try {
        var digest = hex(await sha256(new Uint8Array(await file.arrayBuffer())));
        if (digest === expected) {
          setResult(result, "Matches: " + file.name + " has the SHA-256 recorded in the log (" + digest + ").", "ok");
        } else {
          setResult(
            result,
            "Does not match: " + file.name + " has SHA-256 " + digest + ", but the log records " + expected + ".",
            "failed"
          );
        }
      } catch (error) {
        setResult(result, "Could not read the file: " + error.message, "failed");
      }
    }
    form.addEventListener("submit", check);
    input.addEventListener("change", function () {
      if (input.files && input.files[0]) check(null);
    });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-verify]"), wirePanel);
    Array.prototype.forEach.call(document.querySelectorAll("[data-file-check]"), wireFileCheck);
  }

  // For anyone who wants to script the same checks (and for tests).
  window.OpenPolicyLedger = {
    verifyPanel: verifyPanel,
    verifyCheckpoint: verifyCheckpoint,
    parseVerifierKey: parseVerifierKey,
    rootFromInclusionProof: rootFromInclusionProof,
    hashLeaf: hashLeaf,
    TileReader: TileReader,
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
