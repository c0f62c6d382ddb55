// "Reset admin password": asks the platform for a new WordPress admin password and shows it
// once. The password lives only in this dialog's input while it is open; closing the dialog
// clears it, and the platform hands it out a single time (410 afterwards).

import * as api from "./api.js";
import { safeUrl } from "./stores.js";

const REVEAL_POLL_MS = 1_500;
const REVEAL_GIVE_UP_MS = 180_000; // the reset Job's work plus a cold start

const $ = (id) => document.getElementById(id);

export class ResetDialog {
  /** onUnauthorized(message) runs when the gateway rejects the token. */
  constructor(onUnauthorized) {
    this.dialog = $("reset-dialog");
    this.form = $("reset-form");
    this.name = $("reset-name");
    this.progress = $("reset-progress");
    this.result = $("reset-result");
    this.user = $("reset-user");
    this.password = $("reset-password");
    this.copy = $("reset-copy");
    this.login = $("reset-login");
    this.error = $("reset-error");
    this.confirm = $("reset-confirm");
    this.cancel = $("reset-cancel");
    this.onUnauthorized = onUnauthorized;
    this.store = null;
    this.timer = 0;
    this.run = 0; // bumps on every open/close: a late answer of an earlier run is ignored

    this.cancel.addEventListener("click", () => this.dialog.close());
    // Escape fires "cancel" at once and "close" a moment later: forget on both.
    this.dialog.addEventListener("cancel", () => this.forget());
    this.dialog.addEventListener("close", () => this.forget());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });
    this.copy.addEventListener("click", () => this.copyPassword());
  }

  open(store) {
    this.forget();
    this.store = store;
    this.name.textContent = store.name;
    this.progress.textContent = "";
    this.error.textContent = "";
    this.result.hidden = true;
    this.confirm.hidden = false;
    this.confirm.disabled = false;
    this.confirm.textContent = "Reset password";
    this.cancel.textContent = "Cancel";
    this.dialog.showModal();
    this.cancel.focus();
  }

  async start() {
    const store = this.store;
    if (!store) return;
    const run = this.run;
    this.confirm.disabled = true;
    this.confirm.textContent = "Resetting…";
    this.error.textContent = "";
    this.progress.textContent = "Asking the platform for a new password…";
    try {
      const answer = await api.resetAdminPassword(store.name);
      if (run !== this.run) return;
      this.cancel.textContent = "Close";
      this.poll(store, answer.id, Date.now() + REVEAL_GIVE_UP_MS, run);
    } catch (err) {
      if (run === this.run) this.fail(err);
    }
  }

  async poll(store, id, giveUpAt, run) {
    try {
      const answer = await api.revealAdminPassword(store.name, id);
      if (run !== this.run) return;
      if (answer.status === 200) {
        this.show(store, answer.body);
        return;
      }
      this.progress.textContent = `${answer.body?.progress ?? "resetting"}…`;
      if (Date.now() > giveUpAt) {
        this.fail(new Error("The reset did not finish in 3 minutes. The store's reset Job may "
          + "still be waiting to start: see Undelivered events below, or `kubectl -n "
          + `storeplatform describe job admin-password-${store.name}\`.`));
        return;
      }
      this.timer = setTimeout(() => this.poll(store, id, giveUpAt, run), REVEAL_POLL_MS);
    } catch (err) {
      if (run === this.run) this.fail(err);
    }
  }

  show(store, body) {
    this.progress.textContent = "Done: the new password works now.";
    this.user.textContent = typeof body?.user === "string" ? body.user : "";
    this.password.value = typeof body?.password === "string" ? body.password : "";
    const admin = safeUrl(store.adminUrl);
    this.login.hidden = !admin;
    if (admin) this.login.href = admin;
    this.result.hidden = false;
    this.confirm.hidden = true;
    this.password.focus();
    this.password.select();
  }

  fail(err) {
    this.progress.textContent = "";
    this.error.textContent = err instanceof api.UnreachableError
      ? `No answer from the gateway at ${err.url}.` : String(err?.message ?? err);
    this.confirm.disabled = false;
    this.confirm.hidden = false;
    this.confirm.textContent = "Try again";
    if (err instanceof api.ApiError && err.status === 401) {
      this.dialog.close();
      this.onUnauthorized(err.message);
    }
  }

  async copyPassword() {
    try {
      await navigator.clipboard.writeText(this.password.value);
      this.copy.textContent = "Copied";
    } catch {
      this.password.select(); // the browser refused: let the person copy it
      this.copy.textContent = "Press Ctrl+C";
    }
  }

  /** Drop the password and stop polling (the dialog closed, or opens for another store). */
  forget() {
    clearTimeout(this.timer);
    this.run += 1;
    this.password.value = "";
    this.user.textContent = "";
    this.copy.textContent = "Copy";
    this.result.hidden = true;
    this.store = null;
  }
}
