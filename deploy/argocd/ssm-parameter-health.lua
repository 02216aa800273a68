-- Argo CD health of an SsmParameter or a ClusterSsmParameter (ssm-operator.io):
-- Healthy while the Secret holds every key (Ready=True, also while refreshes
-- fail: it keeps its last good values), Degraded when it does not
-- (Ready=False), Progressing until the operator has reported on the current
-- spec, and while a ClusterSsmParameter's namespaces are on their way (Pending).
local hs = {status = "Progressing", message = "waiting for the operator to report on this generation"}
local status = obj.status
if status == nil or status.observedGeneration == nil
    or status.observedGeneration < (obj.metadata.generation or 0) then
  return hs
end
local conditions = {}
for _, condition in ipairs(status.conditions or {}) do
  conditions[condition.type] = condition
end
local function said(condition)
  return (condition.reason or "") .. ": " .. (condition.message or "")
end
local ready, synced = conditions["Ready"], conditions["Synced"]
if ready == nil or (ready.status ~= "True" and ready.status ~= "False") then
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  if synced ~= nil and synced.status == "False" then
    hs.message = "the Secret keeps its last good values; Synced is False, " .. said(synced)
  end
  return hs
end
hs.message = said(ready)
if ready.reason ~= "Pending" then
  hs.status = "Degraded"
end
return hs
