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
cause-update_agent_program = this update agent does not serve "Security agent program and HotFix": none of its clients can upgrade
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
remediation-update_source = Check the agents' update source ("Standard update source" or "Custom update source") in the web console ({ -console-update-source }) and make it the one your operation intends.
remediation-update_agent_program = Enable "Security agent program and HotFix" for this update agent in the web console ({ -console-update-agent-settings }), then let it fetch the new program and recheck; every client pulling from it is blocked until then.
remediation-update_agent = Fix the update agent first: enable "Security agent program and HotFix" in its update agent settings ({ -console-update-agent-settings }), make sure it is online, and let it finish its own upgrade; its clients follow.
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

## Check statuses
status-pass = pass
status-warn = warn
status-fail = fail
status-error = error
status-unspecified = no status

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
report-signal = Signal
report-inferred = inferred, not read: confirm on the console
report-awaiting-restart-heading = Awaiting restart
report-awaiting-restart = { $count } machines have the upgrade installed and wait for Windows to restart; they are not stragglers and need no runbook step, only a restart.
signal-patterns_without_program = patterns arrive but the agent program does not: the console's "Update settings permission" is likely "Pattern files" (runbook step 2)
signal-activeupdate_source = the last update came from the Trend Micro ActiveUpdate server, which never delivers the agent program or hot fixes (runbook step 3)
signal-upgrade_refused = the endpoint refused the upgrade: "Client environment is not qualified to do upgrade or hotfix" (runbook step 6)
signal-server_certificate = the agent's server certificate (OfcNTCer.dat) differs from the others': it shows online yet receives nothing (runbook step 5, Trend Micro KA-0007320)

## CLI
cli-completed = completed
cli-pending = pending
cli-stragglers = stragglers
cli-offline = offline
cli-fleet-cause = FLEET CAUSE

## Check messages: agents send a code and parameters, the coordinator
## renders msg-CODE (server/src/check_text.rs). $detail and $error are the
## OS's or a parser's own words, quoted verbatim.
msg-separator = ;{" "}
list-separator = ,{" "}
value-permission-all_components = "All components"
value-permission-pattern_files = "Pattern files"
value-permission-pattern_engine_driver = "Pattern files, engines, drivers"
value-source-standard = the standard update source (the product server)
value-source-custom = a custom update source
value-service-server = product server
value-service-update_source = update source
msg-product-unreadable = the product state could not be read: `{ $detail }`
msg-product-too-large = the product state is larger than the limit of { $limit } bytes
msg-product-not-utf8 = the product state is not valid UTF-8 (at byte { $at })
msg-product-too-deep = the product state nests deeper than { $limit } levels
msg-product-syntax = the product state is not valid { $format }: `{ $detail }`
msg-product-not-a-table = the product state's top level must be an object, found { $found }
msg-product-missing = product state: { $field } is missing
msg-product-wrong-type = product state: { $field } must be { $expected }, found { $found }
msg-product-not-allowed = product state: { $field }: "{ $value }" is not one of { $allowed }
msg-product-invalid = product state: { $field }: `{ $detail }`
msg-product-field-unreadable = product state: { $field } could not be read: `{ $detail }`
msg-license-expired = license expired on { $expires } ({ $days } days ago)
msg-license-expiring = license expires on { $expires }, in { $days } days (warning window { $warn_days } days)
msg-license-valid = license valid until { $expires } ({ $days } days left)
msg-update-permission-ok = update settings permission is { $permission }
msg-update-permission-wrong = update settings permission is { $permission }; the policy requires { $required }
msg-version-no-target = installed { $installed } (no target)
msg-version-at-target = installed { $installed }, at or above the target { $target }
msg-version-behind = installed { $installed }, behind the target { $target }
msg-version-bad-target = target version: `{ $detail }`
msg-update-source-no-expectation = the update source is { $source } { $address }; the policy names no expected source for this endpoint's labels
msg-update-source-as-expected = the update source is { $source } { $address }, as the policy expects
msg-update-source-unexpected = the update source is { $source } { $address }; the policy expects { $expected_source } { $expected_address }
msg-update-agent-serves-program = this update agent serves "Security agent program and HotFix"
msg-update-agent-lacks-program = this update agent does not serve "Security agent program and HotFix", so its clients cannot upgrade
msg-certificates-none-required = the policy requires no certificates
msg-certificates-store-unreadable = the trust store could not be read: `{ $detail }`
msg-certificates-store-not-read = the trust store was not read
msg-certificates-present = all { $count } required certificates are in { $store } and valid
msg-certificates-missing = missing from { $store }: { $names }
msg-certificates-expired = expired: { $names }
msg-certificates-acs-ready = { $os } trusts Azure Code Signing: { $why }
msg-certificates-acs-missing = { $os } lacks the Azure Code Signing update that Apex One { $target } needs (build 12011 and later): install { $kb } or a later cumulative update
msg-certificates-acs-unknown = cannot tell whether { $os } trusts Azure Code Signing ({ $why }): make sure { $kb } or a later cumulative update is installed before Apex One { $target }
msg-certificates-acs-unreadable = Azure Code Signing readiness could not be read: `{ $detail }`
msg-certificates-acs-table = the Azure Code Signing table shipped with the probe is invalid
msg-connectivity-not-probed = { $service } { $address } was not probed
msg-connectivity-unreachable = { $service } { $address } unreachable: `{ $error }`
msg-connectivity-reachable-tls = { $service } { $address } reachable (TLS handshake in { $ms } ms)
msg-connectivity-reachable-tcp = { $service } { $address } reachable (TCP in { $ms } ms, plain HTTP)
msg-system-requirements-met = the endpoint meets the policy's system requirements
msg-host-unreadable = a host fact could not be read: `{ $detail }`
msg-os-unsupported = OS { $os } is not one the policy supports ({ $supported })
msg-os-version-unknown = os-release has no VERSION_ID to compare with the minimum { $os } { $minimum }
msg-os-too-old = OS { $os } { $version } is older than the minimum { $minimum }
msg-os-version-invalid = os-release VERSION_ID: `{ $detail }`
msg-os-build-unknown = the OS reports no build number to compare with the minimum { $os } build { $minimum }
msg-os-build-too-old = OS { $os } build { $build } is older than the minimum build { $minimum }
msg-arch-unsupported = architecture { $arch } is not one the policy supports ({ $supported })
msg-disk-low = { $free } MiB free at { $path }, below the minimum { $minimum } MiB
msg-memory-low = { $total } MiB of memory, below the minimum { $minimum } MiB
msg-check-crashed = the check failed unexpectedly: `{ $detail }`
msg-check-timed-out = timed out after { $budget }

## Why a cause that names no failing check (coordinator-side detail)
detail-no-results = the probe has reported no check results
detail-missing-checks = no result for: { $checks }
detail-conflict = { $count } agents claim to be the update agent at { $address }: { $claimants }
detail-update-agent-offline = its update agent { $update_agent } is offline
detail-update-agent-lacks-program = its update agent { $update_agent } does not serve "Security agent program and HotFix"
detail-update-agent-behind = its update agent { $update_agent } has not finished upgrading itself
report-consequences = Follow from the update agent { $update_agent } (not separate faults; they clear when it is fixed):

## Step 8: log bundles (rollcall collect)
report-bundle = Update-failure logs collected { $at }: { $files } files, { $bytes } bytes ({ $skipped } left out); download with `rollcall bundle get { $agent }`
report-bundle-none = No update-failure logs collected yet: `rollcall collect { $agent }`
report-bundles-summary = Update-failure logs collected from { $count } of { $total } affected machines (`rollcall collect`).
report-roster = Over the whole roster ({ $source }, read { $age } ago): the upgrade has not completed on { $count } of { $listed } managed endpoints ({ $behind } behind, { $no_probe } with no probe and no known version); { $completed } completed, { $probed } run a probe, { $unlisted } probes are not in the roster.
cause-no_probe = listed by the product, no probe runs there and its version is unknown
cause-no_probe-remediation = Install the probe (rollcall-agent) on these endpoints, or check them in the Apex One console.
