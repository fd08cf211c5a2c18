# rollcall messages, English. Keys are shared with ja.ftl; a test checks
# that both files define the same keys and that the code uses no other.

## Runbook steps
step-1 = License expiry
step-2 = Update settings permission
step-3 = Update source and update agents
step-4 = Certificates for digital-signature checks
step-5 = Connectivity
step-6 = System requirements
step-7 = Overwrite install
step-8 = Information for support
step-none = No runbook step

## Cause codes
cause-license = license expired
cause-update_permission = update settings permission is not "All components"
cause-update_source = update source is not the intended one
cause-update_agent = its update agent blocks it
cause-update_agent_conflict = several agents claim to be its update agent: which one serves it is unknown
cause-certificates = code-signing certificates missing or expired
cause-connectivity = cannot reach the product server or update source
cause-offline = the probe is offline
cause-system_requirements = system requirements not met
cause-unknown = no cause found in steps 1-6
cause-awaiting_recheck = every check passes, on facts older than the last recheck: waiting for a fresh report
cause-no_data = the probe has not reported the runbook's checks
cause-probe_error = checks could not run on the probe (not a runbook cause)

## Remediation, by cause
remediation-license = Check the license expiry date in the web console and renew the license; no agent can upgrade while it is expired.
remediation-update_permission = Set "Update settings permission" to "All components" in the web console, then send a manual update notification to the affected agents and check again.
remediation-update_source = Check the agents' update source ("Standard update source" or "Custom update source") in the web console and make it the one your operation intends.
remediation-update_agent = Fix the update agent first: enable "Security agent program and HotFix" in its update agent settings, make sure it is online, and let it finish its own upgrade; its clients follow.
remediation-update_agent_conflict = Several rollcall agents say they are the update agent at the address this client pulls from (listed above). Find the real one in the web console's update agent list, then fix the agent.toml or product settings of the others (role and update agent address), or revoke them; rollcall blames no update agent until only one claims the address.
remediation-certificates = Install the missing code-signing root and intermediate certificates on the endpoint (and the server), or replace the expired ones.
remediation-connectivity = Work through the connectivity checks even if the tray icon shows online: name resolution, TCP and TLS reachability of the product server and the update source.
remediation-offline = The probe has not reported within the offline window: check that the endpoint is powered on and connected, and that rollcall-agent is running.
remediation-system_requirements = Bring the endpoint up to the agent's system requirements (supported OS and version, OS update level for newer code signing, free disk, memory), or exclude it.
remediation-unknown = Steps 1-6 found nothing: reinstall the security agent over the existing one (overwrite install) to isolate the problem, then collect logs for support.
remediation-awaiting_recheck = No runbook step fails on the facts rollcall has, but they were observed before the last recheck (or no recheck was sent yet), so steps 1-6 are not excluded yet: wait for the agent to answer the recheck. If it never does, check that rollcall-agent is running and connected.
remediation-no_data = The probe has not reported results for the checks of steps 1-6, so nothing can be concluded about them: check that rollcall-agent is running and connected, that its version runs every check, and read its log.
remediation-probe_error = The probe could not run some checks, so rollcall cannot tell whether their runbook steps fail; this is not a cause to give support. Fix the probe's product adapter or its mapping, or the product state source it reads (missing, unreadable or unparsable), then recheck. The erroring checks and their messages are listed above.

## Check names
check-version = installed version
check-license = license
check-update_permission = update settings permission
check-update_source = update source
check-certificates = certificates
check-connectivity = connectivity
check-system_requirements = system requirements

## Report
report-title = Support report: security agent upgrade not completing
report-rollout = Rollout { $id } to { $target }, started { $started }
report-generated = Generated { $at }
report-affected-heading = Affected machines
report-affected = The upgrade has not completed on { $count } of { $total } clients.
report-by-label-heading = Affected by label
report-fleet-cause = Fleet cause: { $cause }. Nearly every straggler fails this check; fix it centrally rather than per endpoint.
report-update-agents-heading = Update agents
report-update-agents-none = No update agents are in this rollout.
report-update-agent-line = { $hostname } ({ $address }): { $state }, blocks { $blocks } clients
report-update-agent-contested = the same address is also claimed by { $claimants }: its clients are update_agent_conflict until only one agent claims it
report-ua-completed = finished upgrading
report-ua-not-completed = has NOT finished upgrading
report-differences-heading = What sets affected agents apart
report-differences-none = No attribute separates the affected agents from the completed ones.
report-difference-line = { $attribute } = { $value }: { $stragglers } of { $stragglers_total } stragglers, { $completed } of { $completed_total } completed
report-update-now-heading = Update Now outcomes
report-update-now-agent = "Update Now" on the agent itself (tray icon): { $tried } agents ran it, { $completed } of them then reported the target version within { $window }; { $refused } refused to run it
report-update-now-server = Manual update notification from the server: { $tried } agents ran it, { $completed } of them then reported the target version within { $window }; { $refused } refused it
report-update-now-note = Counted per agent from the reports the agents sent afterwards. An agent refuses when its agent.toml has no update_command (or the notification had expired or found it busy); it did not try.
report-clock-skew-heading = Agents whose clock is wrong
report-clock-skew-ahead = { $hostname }: its clock runs { $amount } ahead of the coordinator's
report-clock-skew-behind = { $hostname }: its clock runs { $amount } behind the coordinator's
report-clock-skew-note = rollcall places their reports in time by the coordinator's clock; times shown on these endpoints themselves (logs, the product console) are off by that much.
report-stragglers-heading = Stragglers
report-straggler-line = { $hostname } — { $cause } (step { $step }, { $state })
report-straggler-line-no-step = { $hostname } — { $cause } (no runbook step, { $state })
report-remediation = Remediation
report-evidence = Evidence

## CLI
cli-completed = completed
cli-pending = pending
cli-stragglers = stragglers
cli-offline = offline
cli-fleet-cause = FLEET CAUSE
