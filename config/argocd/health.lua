-- Argo CD health check for WeChatComponent and WeChatAuthorizer (platform.wechat-operator.dev).
-- It reads the conditions the operator keeps for kstatus, so Argo CD and Flux agree:
--   Stalled True               -> Degraded    a human must act (credentials, authorization, permissions)
--   Reconciling True           -> Progressing no token yet, or a failed refresh being retried
--   Ready True, nothing else   -> Healthy     a fresh token is in the token Secret
-- and Progressing while the controller has not acted on the latest spec.
local hs = {status = "Progressing", message = "waiting for the operator to reconcile"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.message = "the operator has not acted on the latest spec yet"
  return hs
end
local ready, reconciling, stalled
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then ready = c end
  if c.type == "Reconciling" then reconciling = c end
  if c.type == "Stalled" then stalled = c end
end
local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling)
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end
if ready ~= nil then
  hs.message = describe(ready)
end
return hs
