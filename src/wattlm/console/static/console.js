// Shared helpers of the console's page scripts: the CSRF token, labels, JSON requests.
"use strict";
const consoleData = (id) => JSON.parse(document.getElementById(id).textContent);
const Console = {
  csrf: consoleData("console-csrf"),
  labels: consoleData("console-labels"),
  t(key) { return this.labels[key] || key; },
  async send(url, method, body, contentType) {
    const headers = { "X-CSRF-Token": this.csrf };
    if (contentType) headers["Content-Type"] = contentType;
    const response = await fetch(url, { method, headers, body, credentials: "same-origin" });
    const text = await response.text();
    let payload = null;
    try { payload = text ? JSON.parse(text) : null; } catch (error) { payload = { error: text }; }
    if (!response.ok) {
      const message = payload && (payload.error && (payload.error.message || payload.error)) || response.statusText;
      throw new Error(String(message));
    }
    return payload;
  },
  postJSON(url, data) { return this.send(url, "POST", JSON.stringify(data), "application/json"); },
  el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") node.textContent = value; else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child);
    return node;
  },
};
window.Console = Console;
