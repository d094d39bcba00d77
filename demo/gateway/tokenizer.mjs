// SPDX-License-Identifier: MIT
// The demo's one tokenizer, shared by the fake backend and (in precise mode) the gateway, so both
// hash the same token ids: one token per UTF-8 byte (ids 0..255, as a byte-level BPE's base
// vocabulary). A real deployment gives the gateway the model's own tokenizer instead.

const encoder = new TextEncoder();

/** Token ids of `text`: its UTF-8 bytes. */
export function tokenize(text) {
  return Int32Array.from(encoder.encode(text));
}

/** The text of a message's content: a string, or the text parts of an array of content parts. */
function contentText(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (p && typeof p.text === 'string' ? p.text : '')).join('');
  return '';
}

/**
 * The prompt text of a chat request, deterministically: each message as `<|role|>\ncontent\n`,
 * then `<|assistant|>\n` (a ChatML-like template). Two requests that share their first messages
 * share a prefix of this text, so they share KV blocks.
 */
export function chatPrompt(messages) {
  if (!Array.isArray(messages) || messages.length === 0) throw new TypeError('messages must be a non-empty array');
  let text = '';
  for (const m of messages) {
    if (!m || typeof m.role !== 'string') throw new TypeError('every message needs a string role');
    text += `<|${m.role}|>\n${contentText(m.content)}\n`;
  }
  return `${text}<|assistant|>\n`;
}

/**
 * The prompt of an OpenAI-compatible request body: `{ tokens }` when `prompt` is an array of
 * integer token ids, else `{ text }` (`prompt` string, or the chat template over `messages`).
 * Throws TypeError for anything else.
 */
export function promptOf(body, chat) {
  if (body === null || typeof body !== 'object') throw new TypeError('the body must be a JSON object');
  if (chat) return { text: chatPrompt(body.messages) };
  const p = body.prompt;
  if (typeof p === 'string') return { text: p };
  if (Array.isArray(p) && p.every((t) => Number.isInteger(t) && t >= 0 && t < 2 ** 31)) return { tokens: Int32Array.from(p) };
  throw new TypeError('prompt must be a string or an array of token ids (batched prompts are not supported)');
}
