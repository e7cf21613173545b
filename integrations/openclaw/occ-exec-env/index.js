// occ-exec-env: installed by `occ install`, removed by `occ uninstall`.
//
// OpenClaw's exec sets no per-session id. This plugin's one hook, resolve_exec_env, adds
// to every exec command's environment (OpenClaw drops PATH, LD_* and similar keys from
// hook output, so it cannot change what runs):
//   OPENCLAW_TASK_SESSION_ID  the session id (occ scopes --session grants by it)
//   OPENCLAW_SESSION_KEY      the session key, e.g. agent:main:telegram:direct:42
//   OPENCLAW_AGENT_ID         the agent id
//   OPENCLAW_MESSAGE_CHANNEL  the channel the run's message came from, when there is one
// OpenClaw itself adds OPENCLAW_CHANNEL_CONTEXT (sender and chat ids) on channel runs.
// These describe the request to the approver; occ never grants anything because of them.

const MAX = 256;

function put(env, key, value) {
  if (typeof value === "string" && value.length > 0) {
    env[key] = value.length > MAX ? value.slice(0, MAX) : value;
  }
}

export default {
  id: "occ-exec-env",
  name: "occ exec environment",
  description:
    "Gives each exec command its session id, agent and message channel, for occ's sudo gate",
  register(api) {
    api.on("resolve_exec_env", (event, ctx) => {
      const env = {};
      const sessionKey = ctx?.sessionKey ?? event?.sessionKey;
      put(env, "OPENCLAW_TASK_SESSION_ID", ctx?.sessionId ?? sessionKey);
      put(env, "OPENCLAW_SESSION_KEY", sessionKey);
      put(env, "OPENCLAW_AGENT_ID", ctx?.agentId);
      put(env, "OPENCLAW_MESSAGE_CHANNEL", ctx?.messageProvider ?? ctx?.channelId);
      return env;
    });
  },
};
