-- Argo CD health check for agentic.stigmer.ai/v1 Agent and AgentInstance.
--
-- The operator reports metav1.Condition-style status: a Ready condition
-- (always present once it has seen the object) plus observedGeneration, both
-- at the top of status and on each condition, and kstatus's Stalled and
-- Reconciling conditions (what Flux reads): Stalled=True when only a change
-- by someone can help, Reconciling=True while it works, retries or waits.
--
--   Healthy      Ready=True, observed at the object's current generation
--   Progressing  no status yet, generation not observed yet, Reconciling=True,
--                Ready=Unknown, or Ready=False with a transient reason: the
--                operator retries, or waits for something that GitOps applies
--                alongside (an AgentInstance whose Agent does not exist yet:
--                AgentNotFound; the instance is re-run as soon as the Agent
--                appears)
--   Degraded     Stalled=True, or Ready=False with any other (permanent)
--                reason; the message says why, e.g. a validation error
--
-- Source of truth: deploy/argocd/health.lua. docs/gitops.md and
-- examples/argocd/argocd-cm.yaml embed this file verbatim (a test checks).

local TRANSIENT_REASONS = {
  AgentNotFound = true,
  Pending = true,
  Progressing = true,
  Reconciling = true,
  Retrying = true,
  TemporaryError = true,
  Unknown = true,
}

local function is_transient(reason)
  if reason == nil or reason == "" then
    return true
  end
  if TRANSIENT_REASONS[reason] then
    return true
  end
  -- WaitingForAgent, WaitingForDefaultInstance, ...
  return string.sub(reason, 1, 7) == "Waiting"
end

local function describe(condition, fallback)
  local text = condition.message
  if text == nil or text == "" then
    text = fallback
  end
  if condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason .. ": " .. text
  end
  return text
end

local hs = { status = "Progressing", message = "Waiting for the operator to report status" }

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Being deleted"
  return hs
end

local status = obj.status
if status == nil then
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end

if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local ready = nil
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
    if condition.type == "Stalled" and condition.status == "True" then
      hs.status = "Degraded"
      hs.message = describe(condition, "Stalled")
      return hs
    end
    if condition.type == "Reconciling" and condition.status == "True" then
      hs.message = describe(condition, "Reconciling")
      return hs
    end
  end
end

if ready == nil then
  hs.message = "Waiting for the Ready condition"
  return hs
end

if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.message = "Ready condition is from generation " .. tostring(ready.observedGeneration)
    .. ", waiting for generation " .. tostring(generation)
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

if ready.status == "False" and not is_transient(ready.reason) then
  hs.status = "Degraded"
  hs.message = describe(ready, "Not ready")
  return hs
end

hs.message = describe(ready, "Not ready yet")
return hs
