/*
 * Open Policy Ledger: check, in the reader's own browser, that what a page shows is in the
 * signed log. Trusts nothing the server says: only the log's public key (the one the page
 * names, or one the reader pastes in) and the browser's own WebCrypto.
 *
 * A page about one record (data-record on its [data-verify] panel: proposal, history,
 * compare, meeting, publication, organisation) is checked from the log, not from the page:
 * every entry of the record comes from GET /subjects/{id}/entries (or, on a mirror, the list
 * subjects/{id}.json and the tiles), each proved to one signed checkpoint; the record's
 * versions must run 1..n; every fact the page marks (data-fact) is derived from those
 * entries by a reducer per record kind, and every other record it names (data-ref) from that
 * record's own entries. See "A record page" below and docs/VERIFYING.md section 17.
 *
 * Other pages (the audit page) name their entries (data-indexes); for each it fetches
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

  // A record page: which entries it rests on comes from the log, not from the page ------------
  //
  // A page about one record (a proposal, a meeting …) carries data-record="<id>" on its panel.
  // The browser asks for every entry of that record (GET /subjects/<id>/entries, or on a
  // mirror the list subjects/<id>.json read from the tiles), checks each entry's inclusion
  // proof to one signed checkpoint, that the record's versions run 1, 2, 3 … with none
  // missing, and derives from those entries alone every fact the page marks with data-fact
  // (value: data-fact-value, else the element's text). Names of other records the page shows
  // (data-ref="<id>": an organisation's name, a meeting's or proposal's title) come from those
  // records' own entries, fetched and checked the same way. A fact the entries do not give
  // fails; a fact the page must show (REQUIRED below) but does not, fails too.

  function checkedAnswer(ctx, answer, index) {
    return (async function () {
      if (answer.index !== index) fail("asked for entry " + index + " but got entry " + answer.index);
      if (!ctx.checkpoints[answer.checkpoint]) {
        ctx.checkpoints[answer.checkpoint] = await verifyCheckpoint(answer.checkpoint, ctx.key, ctx.witnesses);
      }
      var checkpoint = ctx.checkpoints[answer.checkpoint];
      ctx.checkpoint = checkpoint;
      if (checkpoint.origin !== ctx.origin) {
        fail("the checkpoint's origin “" + checkpoint.origin + "” is not the log “" + ctx.origin + "” you are checking");
      }
      if (checkpoint.size !== ctx.size) fail("entry " + index + ": the checkpoint is for size " + checkpoint.size + ", not " + ctx.size);
      var bytes = encoder.encode(answer.entry);
      var proof = (answer.inclusion_proof || []).map(function (item, position) {
        var hash = b64decode(item, "entry " + index + ": inclusion proof hash " + position);
        if (hash.length !== 32) fail("entry " + index + ": inclusion proof hash " + position + " is not 32 bytes");
        return hash;
      });
      var root = await rootFromInclusionProof(await hashLeaf(bytes), index, ctx.size, proof);
      if (!equalBytes(root, checkpoint.root)) {
        fail("entry " + index + ": its bytes and inclusion proof do not lead to the root signed in the checkpoint");
      }
      var parsed;
      try {
        parsed = JSON.parse(answer.entry);
      } catch (error) {
        fail("entry " + index + " is not valid JSON");
      }
      if (!parsed || parsed.index !== index) fail("entry " + index + " says it is entry " + (parsed && parsed.index));
      ctx.entriesChecked[index] = true;
      return parsed;
    })();
  }

  /* The answers (entry bytes, proof, checkpoint) for every entry of record `id`. */
  async function recordAnswers(ctx, id) {
    var answers = [];
    if (ctx.mirror) {
      var listText = await getText(ctx.mirror + "subjects/" + id + ".json", "the mirror's list of entries of record " + id);
      var list;
      try {
        list = JSON.parse(listText);
      } catch (error) {
        fail("the mirror's list of entries of record " + id + " is not JSON");
      }
      if (!list || list.subject !== id || !Array.isArray(list.indexes)) fail("the mirror's list of entries of record " + id + " is malformed");
      answers = await mapLimited(list.indexes, CONCURRENCY, async function (index) {
        if (!Number.isSafeInteger(index)) fail("the mirror's list of entries of record " + id + " is malformed");
        var answer = await entryFromTiles(ctx.tiles, index, ctx.note);
        return answer;
      });
      return answers;
    }
    var after = -1;
    for (var page = 0; page < 1000; page++) {
      var url = ctx.base + "/subjects/" + encodeURIComponent(id) + "/entries?after=" + after + (ctx.size === null ? "" : "&size=" + ctx.size);
      var body;
      try {
        body = JSON.parse(await getText(url, "the entries of record " + id));
      } catch (error) {
        if (error instanceof VerifyError) throw error;
        fail("the entries of record " + id + ": the server's answer is not JSON");
      }
      if (!body || !Array.isArray(body.entries) || typeof body.checkpoint !== "string") {
        fail("the entries of record " + id + ": the server's answer lacks entries or a checkpoint");
      }
      if (ctx.size === null) {
        if (!Number.isSafeInteger(body.tree_size) || body.tree_size <= 0) fail("the log's tree size is not valid");
        ctx.size = body.tree_size;
      }
      if (body.tree_size !== ctx.size) fail("the entries of record " + id + " are proved to another tree size");
      body.entries.forEach(function (item) {
        answers.push({ index: item.index, entry: item.entry, inclusion_proof: item.inclusion_proof, checkpoint: body.checkpoint });
      });
      if (body.next_after === null || body.next_after === undefined) return answers;
      if (!(body.next_after > after)) fail("the entries of record " + id + " do not page forward");
      after = body.next_after;
    }
    fail("record " + id + " has too many entries to check here");
  }

  /* Record `id`'s checked entries up to the page's position, with versions 1..n all there. */
  var RECORD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

  async function loadRecord(ctx, id) {
    if (ctx.records[id]) return ctx.records[id];
    if (!RECORD_ID.test(id)) fail("the page names a record “" + shorten(id) + "”, which is not a record id of this log");
    ctx.progress("Fetching the entries of record " + id + "…");
    var answers = await recordAnswers(ctx, id);
    var entries = [];
    for (var i = 0; i < answers.length; i++) {
      var answer = answers[i];
      if (typeof answer.entry !== "string" || !Number.isSafeInteger(answer.index)) fail("an entry of record " + id + " is malformed");
      var parsed = await checkedAnswer(ctx, answer, answer.index);
      if (!parsed.subject || parsed.subject.id !== id) fail("entry " + answer.index + " is not about record " + id);
      if (entries.length && answer.index <= entries[entries.length - 1].index) fail("the entries of record " + id + " are not in log order");
      if (ctx.at === null || parsed.index <= ctx.at) entries.push(parsed);
    }
    if (!entries.length) fail("the log has no entry about record " + id + (ctx.at === null ? "" : " up to entry " + ctx.at));
    for (var v = 0; v < entries.length; v++) {
      if (entries[v].subject.version !== v + 1) {
        fail("version " + (v + 1) + " of record " + id + " is missing: the log's entries for it skip from version " + v + " to " + entries[v].subject.version);
      }
      if (entries[v].subject.kind !== entries[0].subject.kind) fail("entry " + entries[v].index + " changes the kind of record " + id);
    }
    var record = { id: id, kind: entries[0].subject.kind, entries: entries };
    ctx.records[id] = record;
    return record;
  }

  function join(list) {
    return (list || []).map(String).join(" ");
  }

  /* The facts of a proposal (mirrors projections/proposals.py). */
  function proposalFacts(record, add) {
    var status = "draft";
    var statusEntry = null;
    var textVersion = 0;
    var versions = [];
    var amendments = {};
    var order = [];
    var outcomes = [];
    var individuals = 0;
    record.entries.forEach(function (e) {
      var d = e.data || {};
      add("entry." + e.index + ".type", e.type);
      add("entry." + e.index + ".time", e.time);
      add("entry." + e.index + ".actor", e.actor && e.actor.id);
      add("entry." + e.index + ".amendment", d.amendment_id || "");
      add("entry." + e.index + ".version", d.text_version || "");
      add("entry." + e.index + ".new-status", d.new_status || "");
      if (e.type === "proposal.tabled") {
        add("title", d.title);
        add("sponsor", d.sponsor_org);
        add("strand", d.strand_id);
        add("tabled-index", e.index);
        textVersion = 1;
        versions.push({ number: 1, entry: e, sections: d.sections, basedOn: "", note: "", meeting: d.meeting_id, amendments: [] });
      } else if (e.type === "proposal.amendment_proposed") {
        if (!amendments[d.amendment_id]) order.push(d.amendment_id);
        amendments[d.amendment_id] = {
          rationale: d.rationale, proposer: d.proposer_org, meeting: d.meeting_id,
          "base-version": d.base_version, index: e.index, decision: "", consensus: "",
          note: "", dissent: "", "decided-meeting": "", "decided-index": "", "incorporated-in": "",
        };
      } else if (e.type === "proposal.amendment_decided") {
        var a = amendments[d.amendment_id];
        if (!a) fail("entry " + e.index + " decides amendment " + d.amendment_id + ", which was never proposed");
        a.decision = d.decision;
        a.consensus = d.consensus;
        a.note = d.note;
        a.dissent = join(d.dissenting_orgs);
        a["decided-meeting"] = d.meeting_id;
        a["decided-index"] = e.index;
      } else if (e.type === "proposal.revised") {
        textVersion = d.text_version;
        versions.push({ number: d.text_version, entry: e, sections: d.sections, basedOn: d.based_on, note: d.note, meeting: d.meeting_id, amendments: d.amendment_ids });
        (d.amendment_ids || []).forEach(function (id) {
          if (amendments[id]) amendments[id]["incorporated-in"] = d.text_version;
        });
      } else if (e.type === "proposal.status_changed") {
        status = d.new_status;
        statusEntry = e;
      } else if (e.type === "proposal.legislative_outcome_linked") {
        outcomes.push({ index: e.index, legislation: d.legislation, provision: d.provision, note: d.note });
      } else if (e.type === "proposal.individual_sponsor_recorded") {
        individuals += 1;
      }
    });
    add("entries", join(record.entries.map(function (e) { return e.index; })));
    add("status", status);
    add("status-index", statusEntry ? statusEntry.index : "");
    add("status-time", statusEntry ? statusEntry.time : "");
    add("status-reason", statusEntry ? statusEntry.data.reason : "");
    add("text-version", textVersion);
    add("individual-sponsors", individuals);
    add("outcomes", join(outcomes.map(function (o) { return o.index; })));
    outcomes.forEach(function (o) {
      add("outcome." + o.index + ".legislation", o.legislation);
      add("outcome." + o.index + ".provision", o.provision);
      add("outcome." + o.index + ".note", o.note);
    });
    add("versions", join(versions.map(function (v) { return v.number; })));
    versions.forEach(function (v) {
      var p = "version." + v.number + ".";
      add(p + "index", v.entry.index);
      add(p + "time", v.entry.time);
      add(p + "actor", v.entry.actor && v.entry.actor.id);
      add(p + "actor-org", v.entry.actor && v.entry.actor.org);
      add(p + "based-on", v.basedOn);
      add(p + "note", v.note);
      add(p + "meeting", v.meeting);
      add(p + "amendments", join(v.amendments));
      sectionFacts(p, v.sections, add);
      if (v.number === textVersion) sectionFacts("", v.sections, add);
    });
    add("amendments", join(order));
    add("not-incorporated", join(order.filter(function (id) { return amendments[id]["incorporated-in"] === ""; })));
    add("open-amendments", join(order.filter(function (id) {
      var a = amendments[id];
      return a["incorporated-in"] === "" && (a.decision === "" || a.decision === "no_decision");
    })));
    order.forEach(function (id) {
      Object.keys(amendments[id]).forEach(function (field) {
        add("amendment." + id + "." + field, amendments[id][field]);
      });
    });
    record.label = record.facts.title;
  }

  function sectionFacts(prefix, sections, add) {
    var list = Array.isArray(sections) ? sections : [];
    add(prefix + "section-ids", join(list.map(function (s) { return s.id; })));
    list.forEach(function (s) {
      add(prefix + "section." + s.id + ".heading", s.heading);
      add(prefix + "section." + s.id + ".text", s.text);
    });
  }

  var WITHHELD = { chatham_house: true, private: true };
  var UNATTRIBUTED = { non_attributed: true, chatham_house: true, private: true };

  /* The facts of a meeting (mirrors projections/meetings.py and what it lets the public see). */
  function meetingFacts(record, add) {
    var disclosure = "";
    var held = false;
    var outcomes = [];
    var minutes = null;
    record.entries.forEach(function (e) {
      var d = e.data || {};
      if (e.type === "meeting.scheduled") {
        disclosure = d.disclosure;
        add("title", d.title);
        add("starts-at", d.starts_at);
        add("disclosure", d.disclosure);
        add("convenor", d.convenor_org);
        add("strand", d.strand_id || "");
        add("scheduled-index", e.index);
      } else if (e.type === "meeting.held" || e.type === "meeting.held_with_people" || e.type === "meeting.held_in_confidence") {
        held = true;
        add("held-at", d.held_at);
        var orgs = d.attending_orgs || [];
        var count = e.type === "meeting.held_in_confidence" ? (d.attendance_commitments || []).length : orgs.length;
        add("attendee-count", count);
        add("individuals", (d.attending_people || []).length);
        if (!WITHHELD[disclosure]) add("attendees", join(orgs));
      } else if (e.type === "meeting.outcome_recorded") {
        outcomes.push({ id: d.outcome_id, entry: e, items: d.items || [] });
      } else if (e.type === "meeting.minutes_agreed") {
        minutes = d;
      }
    });
    add("held", held ? "yes" : "no");
    if (!held) add("individuals", 0);
    if (held && WITHHELD[disclosure]) add("attendees", "withheld");
    add("minutes", minutes ? minutes.sha256 : "");
    if (minutes) {
      add("minutes-size", minutes.size);
      add("minutes-media-type", minutes.media_type);
    }
    add("outcomes", join(outcomes.map(function (o) { return o.id; })));
    outcomes.forEach(function (o) {
      var p = "outcome." + o.id + ".";
      add(p + "index", o.entry.index);
      add(p + "time", o.entry.time);
      add(p + "items", o.items.length);
      o.items.forEach(function (item, n) {
        var q = p + "item." + n + ".";
        add(q + "text", item.text);
        add(q + "kind", item.kind);
        add(q + "consensus", item.consensus || "");
        add(q + "orgs", UNATTRIBUTED[disclosure] ? "" : join(item.orgs));
        add(q + "proposal", item.proposal_id || "");
        add(q + "amendment", item.amendment_id || "");
      });
    });
    record.label = record.facts.title;
  }

  /* The facts of an organisation (mirrors projections/organisations.py). */
  function organisationFacts(record, add) {
    var memberships = {};
    var order = [];
    record.entries.forEach(function (e) {
      var d = e.data || {};
      if (e.type === "organisation.registered") {
        add("name", d.name);
        add("org-kind", d.org_kind);
        add("registered-index", e.index);
      } else if (e.type === "organisation.membership_added" || e.type === "organisation.membership_ended") {
        var key = d.process_id + " " + d.group;
        if (!memberships[key]) order.push(key);
        memberships[key] = e.type === "organisation.membership_added" ? { role: d.role, since: e.index, process: d.process_id } : null;
      }
    });
    add("memberships", join(order.filter(function (key) { return memberships[key]; }).map(function (key) { return key.split(" ")[1]; }).sort()));
    order.forEach(function (key) {
      if (!memberships[key]) return;
      add("membership." + key.split(" ")[1] + ".role", memberships[key].role);
      add("membership." + key.split(" ")[1] + ".since", memberships[key].since);
      add("membership." + key.split(" ")[1] + ".process", memberships[key].process);
    });
    record.label = record.facts.name;
  }

  /* The facts of a publication (mirrors projections/publications.py). */
  function publicationFacts(record, add) {
    var state = "";
    var reason = "";
    var stateIndex = "";
    var grants = [];
    record.entries.forEach(function (e) {
      var d = e.data || {};
      if (e.type === "publication.published" || e.type === "publication.embargoed") {
        state = e.type === "publication.published" ? "published" : "embargoed";
        add("title", d.title);
        add("pub-kind", d.pub_kind);
        add("published-index", e.index);
        add("published-time", e.time);
        add("proposals", join(d.proposal_ids));
        add("meetings", join(d.meeting_ids));
        add("sha256", d.sha256 || "");
        add("size", d.sha256 ? d.size : "");
        add("media-type", d.media_type || "");
        add("commitment", d.commitment || "");
        add("release-at", d.release_at || "");
        add("salt", "");
        add("override-reason", "");
      } else if (e.type === "publication.prerelease_access_granted") {
        grants.push(e);
        add("grant." + e.index + ".organisation", d.organisation_id);
        add("grant." + e.index + ".authorised-by", d.authorised_by);
        add("grant." + e.index + ".reason", d.reason);
      } else if (e.type === "publication.released") {
        state = "published";
        add("sha256", d.sha256);
        add("size", d.size);
        add("media-type", d.media_type);
        add("salt", d.salt);
        add("released-index", e.index);
        add("override-reason", d.override_reason || "");
      } else if (e.type === "publication.withdrawn") {
        state = "withdrawn";
        reason = d.reason;
        stateIndex = e.index;
      } else if (e.type === "publication.superseded") {
        state = "superseded";
        reason = d.reason;
        stateIndex = e.index;
        add("superseded-by", d.superseded_by);
      }
    });
    add("grants", join(grants.map(function (e) { return e.index; })));
    add("state", state);
    add("reason", reason);
    add("state-index", stateIndex);
    record.label = record.facts.title;
  }

  /* The facts of a process: its title, strands and phases (mirrors projections/process.py). */
  function processFacts(record, add) {
    record.entries.forEach(function (e) {
      var d = e.data || {};
      if (e.type === "process.started") {
        add("title", d.title);
        add("summary", d.summary);
      } else if (e.type === "process.strand_added") {
        add("strand." + d.strand_id + ".title", d.title);
        add("strand." + d.strand_id + ".summary", d.summary);
      } else if (e.type === "process.phase_started") {
        add("phase", d.phase_id);
        add("phase." + d.phase_id + ".title", d.title);
      }
    });
    record.label = record.facts.title;
  }

  var REDUCERS = {
    process: processFacts,
    proposal: proposalFacts,
    meeting: meetingFacts,
    organisation: organisationFacts,
    publication: publicationFacts,
  };

  function factsOf(record) {
    if (record.facts) return record.facts;
    var reducer = REDUCERS[record.kind];
    if (!reducer) fail("this checker cannot read records of kind “" + record.kind + "”");
    record.facts = {};
    reducer(record, function (key, value) {
      record.facts[key] = value === null || value === undefined ? "" : String(value);
    });
    return record.facts;
  }

  /* Facts each page kind must show (when the log gives them a non-empty value). */
  var REQUIRED = {
    proposal: /^(title|sponsor|status|status-reason|text-version|individual-sponsors|section-ids|section\.[^.]+\.(heading|text)|outcomes|outcome\..*|open-amendments)$/,
    history: /^(title|text-version|versions|entries|not-incorporated|version\.\d+\.(index|based-on|note|time|actor)|entry\.\d+\.(type|amendment|version|new-status))$/,
    meeting: /^(title|starts-at|disclosure|convenor|held|held-at|attendees|attendee-count|individuals|minutes|outcomes|outcome\.[^.]+\.(index|items)|outcome\.[^.]+\.item\.\d+\.(text|kind|consensus|orgs))$/,
    organisation: /^(name|org-kind|memberships)$/,
    publication: /^(title|pub-kind|state|reason|superseded-by|published-time|sha256|size|media-type|commitment|release-at|salt|override-reason|proposals|meetings|grants)$/,
    compare: /^(title|versions)$/,
  };
  var ALWAYS = {
    proposal: ["open-amendments", "outcomes", "section-ids"],
    history: ["versions", "entries", "not-incorporated"],
    meeting: ["outcomes", "held"],
    organisation: ["memberships"],
    publication: ["state", "proposals", "meetings"],
    compare: ["versions"],
  };

  function flat(text) {
    return String(text || "").replace(/\s+/g, " ").trim();
  }

  /* An element's text without the parts matching `selector` (e.g. a diff's deletions). */
  function textWithout(element, selector) {
    if (!element) return "";
    var copy = element.cloneNode(true);
    Array.prototype.forEach.call(copy.querySelectorAll(selector), function (part) {
      part.remove();
    });
    return flat(copy.textContent);
  }

  /* A word diff between versions `from` and `to` (data-diff-from/-to) must turn the one
     version's sections, as the log gives them, into the other's: its text without the
     insertions is the old section, without the deletions the new one. Every section that
     changed must be shown (every section, when the diff shows all). */
  function checkDiffs(root, facts) {
    var checked = 0;
    Array.prototype.forEach.call(root.querySelectorAll("[data-diff-to]"), function (box) {
      var from = box.getAttribute("data-diff-from");
      var to = box.getAttribute("data-diff-to");
      var all = box.getAttribute("data-diff-all") === "yes";
      function section(version, sid, part) {
        return flat(facts["version." + version + ".section." + sid + "." + part]);
      }
      ["from", "to"].forEach(function (which) {
        var version = which === "from" ? from : to;
        if (!Object.prototype.hasOwnProperty.call(facts, "version." + version + ".section-ids")) {
          fail("the page compares with version " + version + ", which the log's entries for this proposal do not have");
        }
      });
      var shown = {};
      Array.prototype.forEach.call(box.querySelectorAll(".diff-section[data-section-id]"), function (element) {
        var sid = element.getAttribute("data-section-id");
        var heading = element.firstElementChild;
        var text = element.querySelector(".diff-text");
        var pairs = [
          ["heading", textWithout(heading, "ins, .tag"), textWithout(heading, "del, .tag")],
          ["text", textWithout(text, "ins"), textWithout(text, "del")],
        ];
        pairs.forEach(function (pair) {
          if (pair[1] !== section(from, sid, pair[0])) {
            fail("the changes shown to section “" + sid + "” do not start from version " + from + "'s " + pair[0] + " in the log (“" + shorten(section(from, sid, pair[0])) + "”)");
          }
          if (pair[2] !== section(to, sid, pair[0])) {
            fail("the changes shown to section “" + sid + "” do not lead to version " + to + "'s " + pair[0] + " in the log (“" + shorten(section(to, sid, pair[0])) + "”)");
          }
        });
        shown[sid] = true;
        checked += 1;
      });
      var ids = (facts["version." + from + ".section-ids"] + " " + facts["version." + to + ".section-ids"]).split(" ").filter(Boolean);
      ids.forEach(function (sid) {
        if (shown[sid]) return;
        var changed = section(from, sid, "heading") !== section(to, sid, "heading") || section(from, sid, "text") !== section(to, sid, "text");
        if (all || changed) fail("the page does not show the changes to section “" + sid + "” from version " + from + " to " + to);
      });
    });
    return checked;
  }

  /* Short excerpts of two long texts around where they first differ. */
  function contrast(shown, derived) {
    var a = String(shown).replace(/\s+/g, " ").trim();
    var b = String(derived).replace(/\s+/g, " ").trim();
    var at = 0;
    while (at < a.length && at < b.length && a[at] === b[at]) at++;
    function excerpt(text) {
      if (text.length <= 80) return text;
      var start = Math.max(0, Math.min(at - 30, text.length - 77));
      return (start > 0 ? "…" : "") + text.slice(start, start + 77) + (start + 77 < text.length ? "…" : "");
    }
    return [excerpt(a), excerpt(b)];
  }

  /* Lists a page kind draws from other records' entries: the panel says they are not proven complete. */
  var OTHER_LISTS = {
    proposal: "The publications listed about this proposal",
    meeting: "The amendments, versions and publications listed as raised, agreed or published about this meeting",
    organisation: "The proposals, amendments and dissents listed for this organisation",
  };

  function describeFact(key) {
    return "“" + key + "”";
  }

  async function verifyRecordPage(panel, ctx, root) {
    var id = panel.getAttribute("data-record");
    var pageKind = panel.getAttribute("data-page") || "";
    var record = await loadRecord(ctx, id);
    var facts = factsOf(record);
    var shown = {};
    var elements = root.querySelectorAll("[data-fact]");
    for (var i = 0; i < elements.length; i++) {
      var element = elements[i];
      var key = element.getAttribute("data-fact");
      var value = element.hasAttribute("data-fact-value") ? element.getAttribute("data-fact-value") : element.textContent;
      if (!Object.prototype.hasOwnProperty.call(facts, key)) {
        fail("the page shows " + describeFact(key) + " as “" + shorten(value) + "”, which no entry of this record says");
      }
      if (normalise(value) !== normalise(facts[key])) {
        var pair = contrast(value, facts[key]);
        fail("the page shows " + describeFact(key) + " as “" + pair[0] + "” but the log's entries say “" + pair[1] + "”");
      }
      shown[key] = true;
    }
    var required = REQUIRED[pageKind];
    var always = ALWAYS[pageKind] || [];
    Object.keys(facts).forEach(function (key) {
      if (shown[key]) return;
      if (always.indexOf(key) >= 0 || (required && required.test(key) && facts[key] !== "")) {
        fail("the page does not show " + describeFact(key) + ", which the log's entries say is “" + shorten(facts[key]) + "”");
      }
    });
    var diffs = record.kind === "proposal" ? checkDiffs(root, facts) : 0;
    // Names and titles of other records the page shows.
    var refs = Array.prototype.slice.call(root.querySelectorAll("[data-ref]"));
    var ids = [];
    refs.forEach(function (element) {
      var refId = element.getAttribute("data-ref");
      if (ids.indexOf(refId) < 0 && refId !== id) ids.push(refId);
    });
    await mapLimited(ids, CONCURRENCY, function (refId) {
      return loadRecord(ctx, refId);
    });
    refs.forEach(function (element) {
      var refId = element.getAttribute("data-ref");
      var other = refId === id ? record : ctx.records[refId];
      var otherFacts = factsOf(other);
      var field = element.getAttribute("data-ref-fact");
      var derived = field ? otherFacts[field] : other.label;
      var value = element.hasAttribute("data-ref-value") ? element.getAttribute("data-ref-value") : element.textContent;
      if (derived === undefined || normalise(value) !== normalise(derived || "")) {
        var pair = contrast(value, derived === undefined ? "(nothing)" : derived);
        fail(
          "the page shows " + (field ? "the " + field + " of " : "") + other.kind + " " + refId + " as “" + pair[0] +
            "” but that " + other.kind + "'s own entries say “" + pair[1] + "”"
        );
      }
    });
    return {
      record: record,
      facts: Object.keys(shown).length + diffs,
      refs: ids.length,
      refNames: refs.length,
    };
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
    rememberKey(given || "");
    if (given) {
      report.keySource = "the key you gave";
      report.readerKey = true;
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
    var recordPage = panel.hasAttribute("data-record");
    if (!indexes.length && !recordPage) fail("this page names no entries to check");
    var mirror = options.mirror !== undefined ? options.mirror : mirrorRoot();
    var report = { entries: indexes.length, shownChecked: 0, keySource: "", mirror: Boolean(mirror) };
    var key = await chooseKey(panel, base, report, mirror);
    var witnesses = [];
    var witnessKeys = String(panel.getAttribute("data-witness-keys") || "").split(/\s+/).filter(Boolean);
    for (var w = 0; w < witnessKeys.length; w++) {
      witnesses.push(await parseVerifierKey(witnessKeys[w], COSIGNATURE_TYPE));
    }
    // The origin checked is the reader's when they gave a key: the name their key carries.
    var origin = report.readerKey ? key.name : panel.getAttribute("data-log-origin") || key.name;
    report.origin = origin;
    report.witnesses = witnesses.length;
    report.keyName = key.name;
    report.keyId = key.idHex;
    if (recordPage) return verifyRecordPanel(panel, options, report, key, witnesses, origin, mirror);
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

  async function verifyRecordPanel(panel, options, report, key, witnesses, origin, mirror) {
    var main = document.querySelector("main[data-log-index]");
    var at = main ? Number(main.getAttribute("data-log-index")) : null;
    if (at !== null && !Number.isSafeInteger(at)) at = null;
    var ctx = {
      base: options.base || "",
      mirror: mirror,
      key: key,
      witnesses: witnesses,
      origin: origin,
      at: at,
      size: null,
      note: null,
      tiles: null,
      checkpoint: null,
      checkpoints: {},
      records: {},
      entriesChecked: {},
      progress: options.progress || function () {},
    };
    if (mirror) {
      ctx.progress("Fetching the mirror's checkpoint…");
      ctx.note = await getText(mirror + "checkpoint", "the mirror's checkpoint");
      ctx.size = parseCheckpoint(splitNote(ctx.note).text).size;
      if (ctx.size <= 0) fail("the mirror's checkpoint is for an empty log");
      ctx.tiles = new TileReader(mirror, ctx.size);
    }
    var result = await verifyRecordPage(panel, ctx, options.root || document);
    if (at !== null && at >= ctx.size) {
      fail("this page reflects entry " + at + ", which is beyond the signed checkpoint of size " + ctx.size);
    }
    var entries = result.record.entries;
    report.record = result.record.id;
    report.recordKind = result.record.kind;
    report.pageKind = panel.getAttribute("data-page") || "";
    report.versions = entries.length;
    report.firstIndex = entries[0].index;
    report.lastIndex = entries[entries.length - 1].index;
    report.at = at;
    report.entries = Object.keys(ctx.entriesChecked).length;
    report.facts = result.facts;
    report.refs = result.refs;
    report.size = ctx.size;
    report.cosigned = ctx.checkpoint ? ctx.checkpoint.cosigned : [];
    await checkFreshness(panel, ctx, report);
    return report;
  }

  /* The log time of a checkpoint is the time of the last entry it covers. The newest
     checkpoint this browser has verified for a log is kept (localStorage); one older than it
     by more than the page's data-max-checkpoint-age seconds of log time is flagged. */
  async function checkFreshness(panel, ctx, report) {
    var last = ctx.size - 1;
    var answer = ctx.mirror
      ? await entryFromTiles(ctx.tiles, last, ctx.note)
      : await getEntry(ctx.base, last, ctx.size);
    var entry = await checkedAnswer(ctx, answer, last);
    var time = Date.parse(entry.time);
    if (!Number.isFinite(time)) fail("entry " + last + " has no valid time");
    report.logTime = entry.time;
    var storageKey = "open-policy-ledger:latest:" + ctx.origin + "+" + ctx.key.idHex;
    var seen = null;
    try {
      seen = JSON.parse(window.localStorage.getItem(storageKey) || "null");
    } catch (error) {
      seen = null;
    }
    var maxAge = Number(panel.getAttribute("data-max-checkpoint-age"));
    if (seen && Number.isSafeInteger(seen.size) && seen.size > ctx.size) {
      var behind = (Date.parse(seen.time) - time) / 1000;
      report.latestSeen = seen;
      if (Number.isFinite(maxAge) && Number.isFinite(behind) && behind > maxAge) report.stale = behind;
      return;
    }
    try {
      window.localStorage.setItem(storageKey, JSON.stringify({ size: ctx.size, time: entry.time }));
    } catch (error) {
      // storage refused: nothing is remembered
    }
  }

  function staleWarning(report) {
    if (!report.stale) return "";
    return (
      "Warning: the checkpoint checked (size " + report.size + ", entries up to " + report.logTime + ") is older than the latest one " +
      "this browser has verified for this log (size " + report.latestSeen.size + ", entries up to " + report.latestSeen.time + ") by " +
      Math.round(report.stale) + " seconds of log time, more than this page allows: entries recorded since may change what it should show."
    );
  }

  function witnessWarning(report) {
    if (!report.witnesses || report.cosigned.length >= report.witnesses) return "";
    return (
      "Warning: only " + report.cosigned.length + " of the " + report.witnesses + " witnesses this page names cosigned the checkpoint, " +
      "so nobody independent is known to have seen this state of the log."
    );
  }

  function summary(report) {
    if (report.record) {
      var text = [
        "Verified: " + report.entries + " " + (report.entries === 1 ? "entry is" : "entries are") +
          " in the log signed by " + report.keyName + " (key " + report.keyId + "), checkpoint size " + report.size + ".",
        "The " + (report.mirror ? "mirror" : "server") + "'s list of this " + report.recordKind + "'s entries runs from version 1 to " +
          report.versions + " with no gap (entries " + report.firstIndex + " to " + report.lastIndex + ").",
        report.facts + " " + (report.facts === 1 ? "fact" : "facts") + " shown on this page follow from them" +
          (report.refs ? ", and the names of " + report.refs + " other " + (report.refs === 1 ? "record" : "records") + " from their own entries." : "."),
      ];
      if (report.witnesses) text.push("Cosigned by " + report.cosigned.length + " of " + report.witnesses + " witnesses.");
      var warning = [staleWarning(report), witnessWarning(report)].filter(Boolean).join(" ");
      return (warning ? warning + " " : "") + text.join(" ");
    }
    return legacySummary(report);
  }

  function legacySummary(report) {
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
    element.classList.remove("is-ok", "is-failed", "is-working", "is-warning");
    if (state) element.classList.add("is-" + state);
  }

  function details(panel, report) {
    var box = panel.querySelector("[data-verify-details]");
    if (!box) return;
    box.textContent = "";
    if (!report) return;
    var list = document.createElement("ul");
    list.className = "verify-details";
    var lines = [];
    if (report.record) {
      lines.push(
        "Proven: the " + report.entries + " entries listed were checked one by one against the checkpoint of size " + report.size +
          "; the " + report.recordKind + "'s versions among them run from 1 to " + report.versions + " with no gap; every fact marked on this page follows from them" +
          (report.refs ? ", and every organisation, meeting or proposal named from that record's own entries." : ".")
      );
      lines.push(
        "Not proven: that this list of the " + report.recordKind + "'s entries, which comes from the " + (report.mirror ? "mirror" : "server") +
          ", is complete: a latest entry it leaves out (up to " +
          (report.at !== null ? "entry " + report.at + ", where this page stands" : "the checkpoint of size " + report.size) +
          ") is not detected by this page, but by running “ledger verify” on the store, or by reading the whole log and checking it against its signed checkpoint." +
          (OTHER_LISTS[report.pageKind]
            ? " " + OTHER_LISTS[report.pageKind] + " come from other records: each is checked for what it names, not for being complete."
            : "")
      );
    }
    lines.push("Origin checked: “" + report.origin + "”" + (report.readerKey ? " (from the key you gave)." : " (the name this page gives the log)."));
    lines.concat([
      "Key used: " + report.keySource + ".",
      report.mirror
        ? "Each entry's bytes come from the mirror's entry bundles; its RFC 9162 inclusion proof was computed in your browser from the mirror's hash tiles."
        : "Each entry's bytes and inclusion proof come from the log's API.",
      "Each entry's SHA-256 leaf hash, with its RFC 9162 inclusion proof, gives the root in the checkpoint.",
      "The checkpoint's Ed25519 signature is the log's, and it names this log.",
    ]).forEach(function (line) {
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
    var typed = panel.querySelector("[data-verify-key]");
    if (typed && !typed.value) typed.value = rememberedKey();
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
        setResult(result, summary(report), witnessWarning(report) || staleWarning(report) ? "warning" : "ok");
        details(panel, report);
      } catch (error) {
        var reason = error instanceof VerifyError ? error.message : "unexpected error: " + error;
        setResult(result, "Verification failed: " + reason + ".", "failed");
      } finally {
        button.disabled = false;
      }
    });
  }

  // The reader's own key, kept in this browser (localStorage) between pages.
  var KEY_STORAGE = "open-policy-ledger:verifier-key";

  function rememberedKey() {
    try {
      return window.localStorage.getItem(KEY_STORAGE) || "";
    } catch (error) {
      return "";
    }
  }

  function rememberKey(vkey) {
    try {
      if (vkey) window.localStorage.setItem(KEY_STORAGE, vkey);
      else window.localStorage.removeItem(KEY_STORAGE);
    } catch (error) {
      // storage refused (private mode): the key is used for this check only
    }
  }

  /* The audit page's "use this key" button: keep the key line shown beside it. */
  function wireRememberKey(button) {
    var vkey = String(button.getAttribute("data-remember-key") || "").trim();
    if (!vkey) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      rememberKey(vkey);
      var status = document.querySelector("[data-remember-key-result]");
      if (status) status.textContent = "Kept in this browser: every page's Verify now checks against this key and its origin.";
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
    Array.prototype.forEach.call(document.querySelectorAll("[data-remember-key]"), wireRememberKey);
  }

  // For anyone who wants to script the same checks (and for tests).
  window.OpenPolicyLedger = {
    verifyPanel: verifyPanel,
    verifyCheckpoint: verifyCheckpoint,
    parseVerifierKey: parseVerifierKey,
    rootFromInclusionProof: rootFromInclusionProof,
    hashLeaf: hashLeaf,
    TileReader: TileReader,
    reducers: REDUCERS,
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
