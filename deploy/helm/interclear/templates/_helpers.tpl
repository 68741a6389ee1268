{{/*
Names, labels and the list of component instances every template ranges over.

An "instance" is one running component: the central ledger, or a DFSP's ledger, connector or SPSP
service. The helpers "interclear.ledgers", "interclear.connectors" and "interclear.spsps" resolve
every default once (DFSP entries are list items, so values.yaml defaults never reach them) and
return JSON {"items": [...]}, so each template reads finished values and does no defaulting.
*/}}

{{/* Chart name. */}}
{{- define "interclear.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every resource name: "<release>-<chart>", or the release name if it has the chart's. */}}
{{- define "interclear.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "name-version" of the chart, for the helm.sh/chart label. */}}
{{- define "interclear.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Name of an instance: "<fullname>-<participant>-<component>". Names are never truncated (two
instances could then collide); one too long for a Service or a Job ("-migrate" is appended) fails.
Arguments: root, participant, component.
*/}}
{{- define "interclear.instanceName" -}}
{{- $name := printf "%s-%s-%s" (include "interclear.fullname" .root) .participant .component -}}
{{- if gt (len $name) 55 -}}
{{- fail (printf "resource name %q is longer than 55 characters: shorten the release name, fullnameOverride or the participant name %q" $name .participant) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* Labels of every resource. Arguments: root, participant, component. */}}
{{- define "interclear.labels" -}}
helm.sh/chart: {{ include "interclear.chart" .root }}
{{ include "interclear.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: interclear
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Labels that select an instance's pods. Arguments: root, participant, component (both omitted for
resources that belong to the whole release).
*/}}
{{- define "interclear.selectorLabels" -}}
app.kubernetes.io/name: {{ include "interclear.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- with .participant }}
interclear.io/participant: {{ . }}
{{- end }}
{{- end -}}

{{/* The image reference: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "interclear.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The ServiceAccount the pods run as. */}}
{{- define "interclear.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "interclear.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* In-cluster gRPC address of an instance Service. Arguments: root, name. */}}
{{- define "interclear.address" -}}
{{- printf "%s.%s.svc:%d" .name .root.Release.Namespace (int .root.Values.ports.grpc) -}}
{{- end -}}

{{/* gRPC address of the central ledger, in this release or outside it. */}}
{{- define "interclear.centralLedgerAddress" -}}
{{- if .Values.centralLedger.enabled -}}
{{- include "interclear.address" (dict "root" . "name" (include "interclear.instanceName" (dict "root" . "participant" .Values.centralLedger.participant "component" "ledger"))) -}}
{{- else -}}
{{- required "centralLedger.address is required when centralLedger.enabled is false" .Values.centralLedger.address -}}
{{- end -}}
{{- end -}}

{{/* Per-DFSP defaults of a connector entry, shared by the ledger and connector lists. */}}
{{- define "interclear.connectorAccounts" -}}
{{- $connector := .connector | default dict -}}
{{- toJson (dict
  "enabled" (ne $connector.enabled false)
  "centralAccount" ($connector.centralAccount | default .name)
  "localAccount" ($connector.localAccount | default "connector")) -}}
{{- end -}}

{{/*
How a DFSP's services map to pods: "per-service" (the default: a Deployment each) or "per-dfsp"
(one Deployment whose container runs the three in one process, `interclear host`). Argument: a
DFSP entry.
*/}}
{{- define "interclear.layout" -}}
{{- .layout | default "per-service" -}}
{{- end -}}

{{/*
The ports one service listens on, as JSON {"grpc", "health", "metrics"}: `ports` for every
service in a pod of its own and for the ledger of a per-dfsp pod; host.ports.connector and
host.ports.spsp for the connector and SPSP service of a per-dfsp pod, which share its network.
Arguments: root, layout (of the service's DFSP; "per-service" for the central ledger), component.
*/}}
{{- define "interclear.servicePorts" -}}
{{- if and (eq .layout "per-dfsp") (has .component (list "connector" "spsp")) -}}
{{- toJson (index .root.Values.host.ports .component) -}}
{{- else -}}
{{- toJson .root.Values.ports -}}
{{- end -}}
{{- end -}}

{{/*
Prefix of a service's container port names in a per-dfsp pod ("ledger-grpc", "conn-grpc",
"spsp-grpc", ...): port names are at most 15 characters, too few for "connector-metrics".
Argument: the component.
*/}}
{{- define "interclear.hostPortPrefix" -}}
{{- get (dict "ledger" "ledger" "connector" "conn" "spsp" "spsp") . -}}
{{- end -}}

{{/*
Render-time checks of values the services would refuse at start (the pod would exit 2 and loop in
CrashLoopBackOff while helm reports success). They mirror the services' own checks
(src/platform/config.ts, src/connector/config.ts, src/spsp/config.ts) and name the value's path.
*/}}

{{/*
The milliseconds of a duration as the services read it ("250ms", "10s", "2m", "1h"), at most
`max` milliseconds (`maxText` in the message); fails naming `path`. Returns decimal text: read it
with atoi. Arguments: path, value, max, maxText.
*/}}
{{- define "interclear.durationMs" -}}
{{- $value := toString .value -}}
{{- if not (regexMatch "^[0-9]+(ms|s|m|h)$" $value) -}}
{{- fail (printf "%s: must be a duration like 500ms, 10s or 2m, got %q" .path $value) -}}
{{- end -}}
{{- $digits := regexReplaceAll "^0*([0-9]+?)(ms|s|m|h)$" $value "${1}" -}}
{{- $unit := regexReplaceAll "^[0-9]+(ms|s|m|h)$" $value "${1}" -}}
{{- /* Every limit is below 10^10 ms: longer digit strings are refused before atoi could overflow. */ -}}
{{- if or (gt (len $digits) 10) (gt (mul (atoi $digits) (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit)) (int64 .max)) -}}
{{- fail (printf "%s: must be at most %s, got %q" .path .maxText $value) -}}
{{- end -}}
{{- mul (atoi $digits) (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit) -}}
{{- end -}}

{{/*
A whole number of minor units as the SPSP service reads it: at most 2^63 - 1 (PostgreSQL int8, the
ledger's largest amount). Returns it without leading zeros. Arguments: path, value.
*/}}
{{- define "interclear.minorUnits" -}}
{{- $value := toString .value -}}
{{- if not (regexMatch "^[0-9]{1,19}$" $value) -}}
{{- fail (printf "%s: must be a whole number of minor units, got %q" .path $value) -}}
{{- end -}}
{{- $digits := regexReplaceAll "^0*([0-9]+?)$" $value "${1}" -}}
{{- if and (eq (len $digits) 19) (gt $digits "9223372036854775807") -}}
{{- fail (printf "%s: must be at most 9223372036854775807 minor units (the ledger's largest amount), got %q" .path $value) -}}
{{- end -}}
{{- $digits -}}
{{- end -}}

{{/*
Every ledger: the central ledger (when enabled) and each DFSP's ledger adapter.
*/}}
{{- define "interclear.ledgers" -}}
{{- $root := . -}}
{{- $shared := .Values.ledger -}}
{{- $items := list -}}
{{- $central := .Values.centralLedger -}}
{{- if $central.enabled -}}
{{- $name := include "interclear.instanceName" (dict "root" $root "participant" $central.participant "component" "ledger") -}}
{{- $connectors := $central.connectors -}}
{{- if not $connectors -}}
{{- range $dfsp := .Values.dfsps -}}
{{- $accounts := include "interclear.connectorAccounts" $dfsp | fromJson -}}
{{- if $accounts.enabled -}}
{{- $connectors = append $connectors $accounts.centralAccount -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $maxHoldTime := $central.maxHoldTime | default $shared.maxHoldTime -}}
{{- $_ := include "interclear.durationMs" (dict "path" (ternary "centralLedger.maxHoldTime" "ledger.maxHoldTime" (not (empty $central.maxHoldTime))) "value" $maxHoldTime "max" 2147483647 "maxText" "2147483647ms (about 24.8 days, the longest timer Node.js keeps)") -}}
{{- $items = append $items (dict
  "participant" $central.participant
  "name" $name
  "principal" ($central.principal | default (printf "%s-ledger" $central.participant))
  "replicas" (int ($central.replicas | default $shared.replicas))
  "resources" ($central.resources | default $shared.resources)
  "databaseSecretName" ($central.database.secretName | default (printf "%s-database" $name))
  "databaseSecretKey" ($central.database.secretKey | default "DATABASE_URL")
  "tlsSecretName" ($central.tls.secretName | default (printf "%s-tls" $name))
  "ilpPrefix" $central.ilpPrefix
  "currency" $central.currency
  "scale" (int $central.scale)
  "precision" (int ($central.precision | default 18))
  "maxHoldTime" $maxHoldTime
  "admins" $central.admins
  "connectors" $connectors
  "layout" "per-service") -}}
{{- end -}}
{{- $participants := ternary (list $central.participant) (list) $central.enabled -}}
{{- range $index, $dfsp := .Values.dfsps -}}
{{- if has $dfsp.name $participants -}}
{{- fail (printf "dfsps: the name %q is used twice (DFSP names and centralLedger.participant must differ)" $dfsp.name) -}}
{{- end -}}
{{- $participants = append $participants $dfsp.name -}}
{{- $ledger := $dfsp.ledger -}}
{{- $database := $ledger.database | default dict -}}
{{- $tls := $ledger.tls | default dict -}}
{{- $name := include "interclear.instanceName" (dict "root" $root "participant" $dfsp.name "component" "ledger") -}}
{{- $accounts := include "interclear.connectorAccounts" $dfsp | fromJson -}}
{{- $connectors := $ledger.connectors | default (ternary (list $accounts.localAccount) (list) $accounts.enabled) -}}
{{- $maxHoldTime := $ledger.maxHoldTime | default $shared.maxHoldTime -}}
{{- $_ := include "interclear.durationMs" (dict "path" (ternary (printf "dfsps[%d].ledger.maxHoldTime" $index) "ledger.maxHoldTime" (not (empty $ledger.maxHoldTime))) "value" $maxHoldTime "max" 2147483647 "maxText" "2147483647ms (about 24.8 days, the longest timer Node.js keeps)") -}}
{{- $items = append $items (dict
  "participant" $dfsp.name
  "name" $name
  "principal" ($ledger.principal | default (printf "%s-ledger" $dfsp.name))
  "replicas" (int ($ledger.replicas | default $shared.replicas))
  "resources" ($ledger.resources | default $shared.resources)
  "databaseSecretName" ($database.secretName | default (printf "%s-database" $name))
  "databaseSecretKey" ($database.secretKey | default "DATABASE_URL")
  "tlsSecretName" ($tls.secretName | default (printf "%s-tls" $name))
  "ilpPrefix" $ledger.ilpPrefix
  "currency" $ledger.currency
  "scale" (int $ledger.scale)
  "precision" (int ($ledger.precision | default 18))
  "maxHoldTime" $maxHoldTime
  "admins" ($ledger.admins | default (list (printf "%s-operator" $dfsp.name)))
  "connectors" $connectors
  "layout" (include "interclear.layout" $dfsp)) -}}
{{- end -}}
{{- toJson (dict "items" $items) -}}
{{- end -}}

{{/*
Every DFSP connector, with the configuration file it reads (connector.json, see
docs/CONNECTOR.md). It connects the central ledger and its DFSP's ledger; routes to the other DFSPs
of this release go through the central ledger to their connectors, and extraRoutes add DFSPs
outside the release.
*/}}
{{- define "interclear.connectors" -}}
{{- $root := . -}}
{{- $shared := .Values.connector -}}
{{- $central := .Values.centralLedger -}}
{{- $items := list -}}
{{- range $index, $dfsp := .Values.dfsps -}}
{{- $connector := $dfsp.connector | default dict -}}
{{- $accounts := include "interclear.connectorAccounts" $dfsp | fromJson -}}
{{- if $accounts.enabled -}}
{{- $database := $connector.database | default dict -}}
{{- $tls := $connector.tls | default dict -}}
{{- $name := include "interclear.instanceName" (dict "root" $root "participant" $dfsp.name "component" "connector") -}}
{{- $localLedger := include "interclear.instanceName" (dict "root" $root "participant" $dfsp.name "component" "ledger") -}}
{{- $principal := $connector.principal | default (printf "%s-connector" $dfsp.name) -}}
{{- $routes := list -}}
{{- range $peer := $root.Values.dfsps -}}
{{- $peerAccounts := include "interclear.connectorAccounts" $peer | fromJson -}}
{{- if and (ne $peer.name $dfsp.name) $peerAccounts.enabled -}}
{{- $peerName := include "interclear.instanceName" (dict "root" $root "participant" $peer.name "component" "connector") -}}
{{- $routes = append $routes (dict
  "targetPrefix" $peer.ledger.ilpPrefix
  "ledger" $central.ilpPrefix
  "nextHop" (dict "account" $peerAccounts.centralAccount "quoting" (include "interclear.address" (dict "root" $root "name" $peerName)))) -}}
{{- end -}}
{{- end -}}
{{- range $route := $connector.extraRoutes | default list -}}
{{- $routes = append $routes (dict
  "targetPrefix" $route.targetPrefix
  "ledger" (ternary $central.ilpPrefix $dfsp.ledger.ilpPrefix (eq $route.ledger "central"))
  "nextHop" (dict "account" $route.nextHop.account "quoting" $route.nextHop.quoting)) -}}
{{- end -}}
{{- $config := dict
  "name" ($connector.name | default $dfsp.name)
  "listen" (printf "0.0.0.0:%d" (int (include "interclear.servicePorts" (dict "root" $root "layout" (include "interclear.layout" $dfsp) "component" "connector") | fromJson).grpc))
  "principal" $principal
  "ilpAddress" ($connector.ilpAddress | default (printf "%s%s" $central.ilpPrefix $accounts.centralAccount))
  "ledgers" (list
    (dict "prefix" $central.ilpPrefix "address" (include "interclear.centralLedgerAddress" $root) "account" $accounts.centralAccount "currency" $central.currency "scale" (int $central.scale))
    (dict "prefix" $dfsp.ledger.ilpPrefix "address" (include "interclear.address" (dict "root" $root "name" $localLedger)) "account" $accounts.localAccount "currency" $dfsp.ledger.currency "scale" (int $dfsp.ledger.scale)))
  "routes" $routes
  "rates" ($connector.rates | default list)
  "spread" ($connector.spread | default "0.002")
  "messageWindow" ($connector.messageWindow | default "1s")
  "maxHoldTime" ($connector.maxHoldTime | default "10s") -}}
{{- with $connector.destinationHoldTime -}}
{{- $_ := set $config "destinationHoldTime" . -}}
{{- end -}}
{{- include "interclear.checkConnector" (dict "where" (printf "dfsps[%d].connector" $index) "config" $config) -}}
{{- $items = append $items (dict
  "participant" $dfsp.name
  "name" $name
  "principal" $principal
  "admins" ($connector.admins | default (list (printf "%s-operator" $dfsp.name)))
  "replicas" (int ($connector.replicas | default $shared.replicas))
  "resources" ($connector.resources | default $shared.resources)
  "databaseSecretName" ($database.secretName | default (printf "%s-database" $name))
  "databaseSecretKey" ($database.secretKey | default "DATABASE_URL")
  "tlsSecretName" ($tls.secretName | default (printf "%s-tls" $name))
  "layout" (include "interclear.layout" $dfsp)
  "config" $config) -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "items" $items) -}}
{{- end -}}

{{/*
Every DFSP SPSP service, with the configuration file it reads (spsp.json, see docs/PAYMENTS.md).
Its directory maps each DFSP of this release to its SPSP service; extraDirectory adds DFSPs
outside the release. The receiver secret is a file from a Secret, never a value in the file.
*/}}
{{- define "interclear.spsps" -}}
{{- $root := . -}}
{{- $shared := .Values.spsp -}}
{{- $items := list -}}
{{- range $index, $dfsp := .Values.dfsps -}}
{{- $spsp := $dfsp.spsp | default dict -}}
{{- if ne $spsp.enabled false -}}
{{- $database := $spsp.database | default dict -}}
{{- $tls := $spsp.tls | default dict -}}
{{- $receiverSecret := $spsp.receiverSecret | default dict -}}
{{- $accounts := include "interclear.connectorAccounts" $dfsp | fromJson -}}
{{- if not $accounts.enabled -}}
{{- fail (printf "dfsps[%s]: the SPSP service quotes through its DFSP's connector: enable the connector or disable spsp" $dfsp.name) -}}
{{- end -}}
{{- $name := include "interclear.instanceName" (dict "root" $root "participant" $dfsp.name "component" "spsp") -}}
{{- $localLedger := include "interclear.instanceName" (dict "root" $root "participant" $dfsp.name "component" "ledger") -}}
{{- $connectorName := include "interclear.instanceName" (dict "root" $root "participant" $dfsp.name "component" "connector") -}}
{{- $principal := $spsp.principal | default (printf "%s-spsp" $dfsp.name) -}}
{{- $directory := dict -}}
{{- range $peer := $root.Values.dfsps -}}
{{- if ne ($peer.spsp | default dict).enabled false -}}
{{- $peerName := include "interclear.instanceName" (dict "root" $root "participant" $peer.name "component" "spsp") -}}
{{- $_ := set $directory $peer.name (dict "spsp" (include "interclear.address" (dict "root" $root "name" $peerName)) "prefix" $peer.ledger.ilpPrefix) -}}
{{- end -}}
{{- end -}}
{{- range $entry := $spsp.extraDirectory | default list -}}
{{- $target := dict "spsp" $entry.spsp -}}
{{- with $entry.prefix }}{{ $_ := set $target "prefix" . }}{{ end -}}
{{- $_ := set $directory $entry.dfsp $target -}}
{{- end -}}
{{- $config := dict
  "dfsp" $dfsp.name
  "listen" (printf "0.0.0.0:%d" (int (include "interclear.servicePorts" (dict "root" $root "layout" (include "interclear.layout" $dfsp) "component" "spsp") | fromJson).grpc))
  "principal" $principal
  "ledger" (include "interclear.address" (dict "root" $root "name" $localLedger))
  "connector" (include "interclear.address" (dict "root" $root "name" $connectorName))
  "secretFile" "/etc/interclear/receiver/secret"
  "receivers" (include "interclear.spspReceivers" (dict "where" (printf "dfsps[%d].spsp" $index) "receivers" ($spsp.receivers | default list)) | fromJson).items
  "directory" $directory -}}
{{- range $key := list "paymentRequestExpiry" "maxPaymentRequestExpiry" "destinationHoldTime" "paymentAbandonmentTime" -}}
{{- with index $spsp $key -}}
{{- $_ := set $config $key . -}}
{{- end -}}
{{- end -}}
{{- include "interclear.checkSpspDurations" (dict "where" (printf "dfsps[%d].spsp" $index) "config" $config) -}}
{{- $items = append $items (dict
  "participant" $dfsp.name
  "name" $name
  "principal" $principal
  "admins" ($spsp.admins | default (list (printf "%s-operator" $dfsp.name)))
  "replicas" (int ($spsp.replicas | default $shared.replicas))
  "resources" ($spsp.resources | default $shared.resources)
  "databaseSecretName" ($database.secretName | default (printf "%s-database" $name))
  "databaseSecretKey" ($database.secretKey | default "DATABASE_URL")
  "tlsSecretName" ($tls.secretName | default (printf "%s-tls" $name))
  "receiverSecretName" ($receiverSecret.secretName | default (printf "%s-receiver" $name))
  "receiverSecretKey" ($receiverSecret.secretKey | default "secret")
  "layout" (include "interclear.layout" $dfsp)
  "config" $config) -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "items" $items) -}}
{{- end -}}

{{/*
Every per-dfsp pod: for each DFSP with layout per-dfsp, its services as `interclear host` runs them
(ledger, connector, SPSP service: each serving before the next starts, and the SPSP service waits
for its ledger), each with exactly the command line of its own pod in the per-service layout but
for its ports (host.ports) and the directory of its TLS Secret (/etc/interclear/tls/<component>),
its database URL from its own Secret through <COMPONENT>_DATABASE_URL. Refuses what one pod cannot
run: replicas other than one (or zero) for all three, ports shared by two services, an
environment variable two services set differently. Returns JSON {"items": [...]}.
*/}}
{{- define "interclear.hosts" -}}
{{- $root := . -}}
{{- $items := list -}}
{{- $instances := dict
  "ledger" (include "interclear.ledgers" $root | fromJson).items
  "connector" (include "interclear.connectors" $root | fromJson).items
  "spsp" (include "interclear.spsps" $root | fromJson).items -}}
{{- range $index, $dfsp := .Values.dfsps -}}
{{- if eq (include "interclear.layout" $dfsp) "per-dfsp" -}}
{{- include "interclear.checkHostPorts" $root -}}
{{- $where := printf "dfsps[%d]" $index -}}
{{- $services := list -}}
{{- $replicas := dict -}}
{{- $configs := dict -}}
{{- range $component := list "ledger" "connector" "spsp" -}}
{{- range $instance := get $instances $component -}}
{{- if and (eq $instance.participant $dfsp.name) (eq $instance.layout "per-dfsp") -}}
{{- $own := index $dfsp $component | default dict -}}
{{- $replicasPath := ternary (printf "%s.%s.replicas" $where $component) (printf "%s.replicas" $component) (not (empty $own.replicas)) -}}
{{- if gt (int $instance.replicas) 1 -}}
{{- fail (printf "%s.layout: per-dfsp runs the DFSP's ledger, connector and SPSP service in one pod with one replica (the connector and the SPSP service are single writers), but its %s has %d replicas (%s): set %s.%s.replicas to 1, or keep layout per-service" $where $component (int $instance.replicas) $replicasPath $where $component) -}}
{{- end -}}
{{- $_ := set $replicas $component (int $instance.replicas) -}}
{{- $ports := include "interclear.servicePorts" (dict "root" $root "layout" "per-dfsp" "component" $component) | fromJson -}}
{{- $tlsDirectory := printf "/etc/interclear/tls/%s" $component -}}
{{- $args := include (printf "interclear.%sArgs" $component) (dict "root" $root "ledger" $instance "instance" $instance "ports" $ports "tlsDirectory" $tlsDirectory) | fromYamlArray -}}
{{- $args = concat $args ((index $root.Values $component).extraArgs | default list) -}}
{{- with $instance.config }}{{ $_ := set $configs $component . }}{{ end -}}
{{- $services = append $services (dict
  "component" $component
  "instance" $instance
  "ports" $ports
  "portPrefix" (include "interclear.hostPortPrefix" $component)
  "tlsDirectory" $tlsDirectory
  "databaseUrlEnv" (printf "%s_DATABASE_URL" (upper $component))
  "args" $args) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if gt (len (values $replicas | uniq)) 1 -}}
{{- $counts := list -}}
{{- range $service := $services }}{{ $counts = append $counts (printf "%s %d" $service.component (get $replicas $service.component)) }}{{ end -}}
{{- fail (printf "%s.layout: per-dfsp runs the DFSP's services in one pod, so their replicas must agree (1, or 0 for all three to stop the DFSP), got %s" $where (join ", " $counts)) -}}
{{- end -}}
{{- $config := dict "name" $dfsp.name "services" list -}}
{{- range $service := $services -}}
{{- $_ := set $config "services" (append $config.services (dict "args" $service.args "databaseUrlEnv" $service.databaseUrlEnv)) -}}
{{- end -}}
{{- $resources := ($dfsp.host | default dict).resources | default $root.Values.host.resources -}}
{{- if not $resources -}}
{{- $resources = include "interclear.sumResources" (dict "where" $where "services" $services) | fromJson -}}
{{- end -}}
{{- $items = append $items (dict
  "participant" $dfsp.name
  "name" (include "interclear.instanceName" (dict "root" $root "participant" $dfsp.name "component" "host"))
  "replicas" (values $replicas | first)
  "resources" $resources
  "services" $services
  "env" (include "interclear.hostExtraEnv" (dict "root" $root "where" $where "services" $services) | fromJson).items
  "config" $config
  "configChecksum" (toJson (dict "host" $config "configs" $configs) | sha256sum)) -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "items" $items) -}}
{{- end -}}

{{/*
Fails unless the ports of a per-dfsp pod's services all differ: the ledger's (ports) and the
connector's and SPSP service's (host.ports), which share the pod's network. Renders nothing.
*/}}
{{- define "interclear.checkHostPorts" -}}
{{- $kinds := ternary (list "grpc" "health" "metrics") (list "grpc" "health") (.Values.metrics.enabled | default false) -}}
{{- $used := dict -}}
{{- range $owner := list "ports" "host.ports.connector" "host.ports.spsp" -}}
{{- $ports := ternary $.Values.ports (index $.Values.host.ports (trimPrefix "host.ports." $owner)) (eq $owner "ports") -}}
{{- range $kind := $kinds -}}
{{- $number := toString (int (index $ports $kind)) -}}
{{- $path := printf "%s.%s" $owner $kind -}}
{{- if hasKey $used $number -}}
{{- fail (printf "%s: %s is also %s, but a per-dfsp pod's ledger, connector and SPSP service share its network: give each its own port" $path $number (get $used $number)) -}}
{{- end -}}
{{- $_ := set $used $number $path -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The extra environment of a per-dfsp container, as JSON {"items": [...]}: the extraEnv of the
ledger, connector and spsp settings of its services, then host.extraEnv. One process has one
environment: a variable two services set differently fails, unless host.extraEnv sets it (and
so decides). Arguments: root, where (the DFSP's values path), services.
*/}}
{{- define "interclear.hostExtraEnv" -}}
{{- $root := .root -}}
{{- $decided := dict -}}
{{- range $variable := $root.Values.host.extraEnv -}}
{{- $_ := set $decided $variable.name true -}}
{{- end -}}
{{- $items := list -}}
{{- $seen := dict -}}
{{- range $service := .services -}}
{{- range $variable := (index $root.Values $service.component).extraEnv | default list -}}
{{- if not (hasKey $decided $variable.name) -}}
{{- if hasKey $seen $variable.name -}}
{{- $earlier := get $seen $variable.name -}}
{{- if ne (toJson $earlier.variable) (toJson $variable) -}}
{{- fail (printf "%s.layout: per-dfsp runs the DFSP's services in one process, with one environment, but %s.extraEnv and %s.extraEnv set %s differently: set it in host.extraEnv" $.where $earlier.component $service.component $variable.name) -}}
{{- end -}}
{{- else -}}
{{- $_ := set $seen $variable.name (dict "component" $service.component "variable" $variable) -}}
{{- $items = append $items $variable -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "items" (concat $items $root.Values.host.extraEnv)) -}}
{{- end -}}

{{/*
The resources of a per-dfsp container when none are set: the sum of its services' (each
instance's resources, already defaulted to the component's). Requests add up, a service with
only a limit counting it as its request (as Kubernetes does); a limit is set only when every
service sets one (one without is unbounded). Returns JSON. Arguments: where, services.
*/}}
{{- define "interclear.sumResources" -}}
{{- $requests := dict -}}
{{- $limits := dict -}}
{{- range $key := list "cpu" "memory" "ephemeral-storage" -}}
{{- $requested := 0 -}}
{{- $anyRequest := false -}}
{{- $limited := 0 -}}
{{- $everyLimit := true -}}
{{- range $service := $.services -}}
{{- $own := $service.instance.resources | default dict -}}
{{- $ownRequests := $own.requests | default dict -}}
{{- $ownLimits := $own.limits | default dict -}}
{{- $path := printf "the %s of %s's %s" $key $.where $service.component -}}
{{- if hasKey $ownLimits $key -}}
{{- $limited = add $limited (include "interclear.quantityMilli" (dict "value" (get $ownLimits $key) "path" (printf "the %s limit of %s's %s" $key $.where $service.component) "where" $.where)) -}}
{{- else -}}
{{- $everyLimit = false -}}
{{- end -}}
{{- $request := ternary (get $ownRequests $key) (get $ownLimits $key) (hasKey $ownRequests $key) -}}
{{- if or (hasKey $ownRequests $key) (hasKey $ownLimits $key) -}}
{{- $requested = add $requested (include "interclear.quantityMilli" (dict "value" $request "path" (printf "the %s request of %s's %s" $key $.where $service.component) "where" $.where)) -}}
{{- $anyRequest = true -}}
{{- end -}}
{{- end -}}
{{- if $anyRequest -}}
{{- $_ := set $requests $key (include "interclear.formatQuantity" (dict "key" $key "milli" $requested)) -}}
{{- end -}}
{{- if and $everyLimit (gt (len $.services) 0) -}}
{{- $_ := set $limits $key (include "interclear.formatQuantity" (dict "key" $key "milli" $limited)) -}}
{{- end -}}
{{- end -}}
{{- $resources := dict -}}
{{- with $requests }}{{ $_ := set $resources "requests" . }}{{ end -}}
{{- with $limits }}{{ $_ := set $resources "limits" . }}{{ end -}}
{{- toJson $resources -}}
{{- end -}}

{{/*
A Kubernetes quantity ("250m", "1", 0.5, "512Mi", "1G") in thousandths of its unit, as decimal
text (read it with atoi or add). Fails naming `path` on a form it does not add up (exponents,
P and E): set the DFSP's host.resources then. Arguments: value, path, where.
*/}}
{{- define "interclear.quantityMilli" -}}
{{- $text := ternary .value (printf "%f" (float64 .value)) (kindIs "string" .value) -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$" $text) -}}
{{- fail (printf "%s: the chart cannot add up the quantity %q for its per-dfsp pod: set %s.host.resources" .path $text .where) -}}
{{- end -}}
{{- $number := regexReplaceAll "[a-zA-Z]+$" $text "" -}}
{{- $suffix := regexReplaceAll "^[0-9.]+" $text "" -}}
{{- $factor := get (dict "" 1000 "m" 1 "k" 1000000 "M" 1000000000 "G" 1000000000000 "T" 1000000000000000 "Ki" 1024000 "Mi" 1048576000 "Gi" 1073741824000 "Ti" 1099511627776000) $suffix -}}
{{- printf "%d" (int64 (round (mulf (float64 $number) $factor) 0)) -}}
{{- end -}}

{{/*
A quantity from thousandths of its unit: cores ("2") or millicores ("600m") for cpu; Gi, Mi, Ki or
bytes (rounded up) otherwise. Arguments: key, milli.
*/}}
{{- define "interclear.formatQuantity" -}}
{{- $milli := int64 .milli -}}
{{- if eq .key "cpu" -}}
{{- if eq (mod $milli 1000) 0 -}}{{ div $milli 1000 }}{{- else -}}{{ $milli }}m{{- end -}}
{{- else -}}
{{- $bytes := div (add $milli 999) 1000 -}}
{{- if and (gt $bytes 0) (eq (mod $bytes 1073741824) 0) -}}{{ div $bytes 1073741824 }}Gi
{{- else if and (gt $bytes 0) (eq (mod $bytes 1048576) 0) -}}{{ div $bytes 1048576 }}Mi
{{- else if and (gt $bytes 0) (eq (mod $bytes 1024) 0) -}}{{ div $bytes 1024 }}Ki
{{- else -}}{{ $bytes }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Checks a connector.json as the connector does at start (src/connector/config.ts): its durations
and their order, and its rates. Renders nothing. Arguments: where (the values path of the
connector), config.
*/}}
{{- define "interclear.checkConnector" -}}
{{- $where := .where -}}
{{- $config := .config -}}
{{- $windowMs := atoi (include "interclear.durationMs" (dict "path" (printf "%s.messageWindow" $where) "value" $config.messageWindow "max" 60000 "maxText" "1m")) -}}
{{- if le $windowMs 0 -}}
{{- fail (printf "%s.messageWindow: must be longer than zero, got %q" $where $config.messageWindow) -}}
{{- end -}}
{{- $maxHoldMs := atoi (include "interclear.durationMs" (dict "path" (printf "%s.maxHoldTime" $where) "value" $config.maxHoldTime "max" 3600000 "maxText" "1h")) -}}
{{- if le $maxHoldMs (mul $windowMs 2) -}}
{{- fail (printf "%s.maxHoldTime: must be longer than two message windows (%d ms), got %q" $where (mul $windowMs 2) $config.maxHoldTime) -}}
{{- end -}}
{{- /* Unset, the connector uses 5s, or maxHoldTime minus the message window when shorter. */ -}}
{{- $destinationHoldMs := min 5000 (sub $maxHoldMs $windowMs) -}}
{{- $destinationHoldText := printf "%dms (the connector's default)" $destinationHoldMs -}}
{{- if hasKey $config "destinationHoldTime" -}}
{{- $destinationHoldMs = atoi (include "interclear.durationMs" (dict "path" (printf "%s.destinationHoldTime" $where) "value" $config.destinationHoldTime "max" 3600000 "maxText" "1h")) -}}
{{- $destinationHoldText = printf "%q" $config.destinationHoldTime -}}
{{- end -}}
{{- if or (lt $destinationHoldMs $windowMs) (gt (add $destinationHoldMs $windowMs) $maxHoldMs) -}}
{{- fail (printf "%s.destinationHoldTime: must be at least the message window (%d ms) and at most maxHoldTime minus the message window (%d ms), got %s" $where $windowMs (sub $maxHoldMs $windowMs) $destinationHoldText) -}}
{{- end -}}
{{- $pairs := list -}}
{{- range $position, $rate := $config.rates -}}
{{- if eq $rate.source $rate.destination -}}
{{- fail (printf "%s.rates[%d].destination: must differ from source (%s)" $where $position $rate.source) -}}
{{- end -}}
{{- $pair := printf "%s → %s" $rate.source $rate.destination -}}
{{- if has $pair $pairs -}}
{{- fail (printf "%s.rates[%d]: %s is listed twice" $where $position $pair) -}}
{{- end -}}
{{- $pairs = append $pairs $pair -}}
{{- end -}}
{{- $central := index $config.ledgers 0 -}}
{{- $local := index $config.ledgers 1 -}}
{{- if ne $central.currency $local.currency -}}
{{- if not (or (has (printf "%s → %s" $central.currency $local.currency) $pairs) (has (printf "%s → %s" $local.currency $central.currency) $pairs)) -}}
{{- fail (printf "%s.rates: no rate between %s (the central ledger) and %s (the DFSP's ledger): add one (its inverse is derived)" $where $central.currency $local.currency) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Checks the durations of an spsp.json as the SPSP service does at start (src/spsp/config.ts), with
the service's defaults for those unset. Renders nothing. Arguments: where, config.
*/}}
{{- define "interclear.checkSpspDurations" -}}
{{- $where := .where -}}
{{- $config := .config -}}
{{- $defaults := dict "paymentRequestExpiry" "30s" "maxPaymentRequestExpiry" "5m" "destinationHoldTime" "5s" "paymentAbandonmentTime" "60s" -}}
{{- $value := dict -}}
{{- $ms := dict -}}
{{- range $key, $limit := dict "paymentRequestExpiry" (list 86400000 "24h") "maxPaymentRequestExpiry" (list 86400000 "24h") "destinationHoldTime" (list 3600000 "1h") "paymentAbandonmentTime" (list 86400000 "24h") -}}
{{- $_ := set $value $key (ternary (printf "%q" (toString (index $config $key))) (printf "%s (the service's default)" (index $defaults $key)) (hasKey $config $key)) -}}
{{- $_ := set $ms $key (atoi (include "interclear.durationMs" (dict "path" (printf "%s.%s" $where $key) "value" (index $config $key | default (index $defaults $key)) "max" (index $limit 0) "maxText" (index $limit 1)))) -}}
{{- end -}}
{{- if lt $ms.paymentRequestExpiry 1000 -}}
{{- fail (printf "%s.paymentRequestExpiry: must be at least 1s, got %s" $where $value.paymentRequestExpiry) -}}
{{- end -}}
{{- if lt $ms.maxPaymentRequestExpiry $ms.paymentRequestExpiry -}}
{{- fail (printf "%s.maxPaymentRequestExpiry: must be at least paymentRequestExpiry (%s), got %s" $where $value.paymentRequestExpiry $value.maxPaymentRequestExpiry) -}}
{{- end -}}
{{- if lt $ms.destinationHoldTime 100 -}}
{{- fail (printf "%s.destinationHoldTime: must be at least 100ms, got %s" $where $value.destinationHoldTime) -}}
{{- end -}}
{{- if lt $ms.paymentAbandonmentTime 1000 -}}
{{- fail (printf "%s.paymentAbandonmentTime: must be at least 1s, got %s" $where $value.paymentAbandonmentTime) -}}
{{- end -}}
{{- end -}}

{{/*
The receivers of an spsp.json, checked as the SPSP service checks them (src/spsp/config.ts), with
empty optional keys left out so that the service applies its defaults. Returns JSON
{"items": [...]}. Arguments: where, receivers.
*/}}
{{- define "interclear.spspReceivers" -}}
{{- $where := .where -}}
{{- $items := list -}}
{{- $names := list -}}
{{- $accounts := list -}}
{{- range $position, $receiver := .receivers -}}
{{- $key := printf "%s.receivers[%d]" $where $position -}}
{{- $out := omit $receiver "account" "displayName" -}}
{{- with $receiver.account }}{{ $_ := set $out "account" . }}{{ end -}}
{{- with $receiver.displayName }}{{ $_ := set $out "displayName" . }}{{ end -}}
{{- $account := $receiver.account | default $receiver.name -}}
{{- if not (regexMatch "^[a-zA-Z0-9_-]{1,86}$" $account) -}}
{{- fail (printf "%s.account: is required when the name (%q) is not an account name: an account name must match [a-zA-Z0-9_-]{1,86}" $key $receiver.name) -}}
{{- end -}}
{{- if has $receiver.name $names -}}
{{- fail (printf "%s.name: %q is listed twice" $key $receiver.name) -}}
{{- end -}}
{{- if has $account $accounts -}}
{{- fail (printf "%s.account: %q is also another receiver's account" $key $account) -}}
{{- end -}}
{{- $names = append $names $receiver.name -}}
{{- $accounts = append $accounts $account -}}
{{- $minimum := 1 -}}
{{- if hasKey $receiver "minimumAmount" -}}
{{- $minimum = atoi (include "interclear.minorUnits" (dict "path" (printf "%s.minimumAmount" $key) "value" $receiver.minimumAmount)) -}}
{{- if lt $minimum 1 -}}
{{- fail (printf "%s.minimumAmount: must be at least 1, got %q" $key $receiver.minimumAmount) -}}
{{- end -}}
{{- end -}}
{{- if hasKey $receiver "maximumAmount" -}}
{{- $maximum := atoi (include "interclear.minorUnits" (dict "path" (printf "%s.maximumAmount" $key) "value" $receiver.maximumAmount)) -}}
{{- if lt $maximum $minimum -}}
{{- fail (printf "%s.maximumAmount: must be at least minimumAmount (%d), got %q" $key $minimum $receiver.maximumAmount) -}}
{{- end -}}
{{- end -}}
{{- $items = append $items $out -}}
{{- end -}}
{{- toJson (dict "items" $items) -}}
{{- end -}}

{{/*
Arguments every server takes: where it listens, health and metrics, the gateway's limit per
principal, and TLS (or --insecure).
Arguments: root; optionally ports (default: .Values.ports) and tlsDirectory (where its TLS Secret
is mounted, default /etc/interclear/tls), which differ for the services of a per-dfsp pod.
*/}}
{{- define "interclear.serverArgs" -}}
{{- $root := .root -}}
{{- $ports := .ports | default $root.Values.ports -}}
{{- $tlsDirectory := .tlsDirectory | default "/etc/interclear/tls" -}}
- --listen=0.0.0.0:{{ $ports.grpc }}
- --health-listen=0.0.0.0:{{ $ports.health }}
- --max-calls-per-principal={{ int $root.Values.gateway.maxCallsPerPrincipal }}
{{- if $root.Values.metrics.enabled }}
- --metrics-listen=0.0.0.0:{{ $ports.metrics }}
{{- end }}
{{- if $root.Values.tls.enabled }}
- --tls-cert={{ $tlsDirectory }}/tls.crt
- --tls-key={{ $tlsDirectory }}/tls.key
- --tls-ca={{ $tlsDirectory }}/ca.crt
{{- else }}
- --insecure
{{- end }}
{{- end -}}

{{/*
What every Interclear pod spec starts with: its ServiceAccount, security context, grace period
and scheduling. Arguments: root, settings (the pod's shared values), labels (the selector labels'
arguments, for the default anti-affinity).
*/}}
{{- define "interclear.podSpecHead" -}}
{{- $root := .root -}}
{{- $settings := .settings -}}
{{- $labels := .labels -}}
serviceAccountName: {{ include "interclear.serviceAccountName" $root }}
automountServiceAccountToken: false
# Service links would add variables named after the release, which may start with INTERCLEAR_
# and be read as configuration.
enableServiceLinks: false
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ $settings.terminationGracePeriodSeconds }}
{{- with $settings.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $settings.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
affinity:
  {{- if $settings.affinity }}
  {{- toYaml $settings.affinity | nindent 2 }}
  {{- else }}
  # By default, spread an instance's replicas over nodes when the cluster allows it.
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "interclear.selectorLabels" $labels | nindent 14 }}
  {{- end }}
{{- with $settings.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The pod template of a component Deployment.
Arguments: root, instance (an item of the lists above), component, settings (the component's
shared values: .Values.ledger, .Values.connector or .Values.spsp), args (rendered YAML list of the
container arguments), configFile (name of the ConfigMap key mounted at /etc/interclear/<key>, or
empty), configChecksum.
*/}}
{{- define "interclear.podTemplate" -}}
{{- $root := .root -}}
{{- $instance := .instance -}}
{{- $settings := .settings -}}
{{- $labels := dict "root" $root "participant" $instance.participant "component" .component -}}
metadata:
  labels:
    {{- include "interclear.labels" $labels | nindent 4 }}
    {{- with $settings.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- if .configChecksum }}
    checksum/config: {{ .configChecksum }}
    {{- end }}
    {{- if and $root.Values.metrics.enabled $root.Values.metrics.scrapeAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ $root.Values.ports.metrics | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with $settings.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- include "interclear.podSpecHead" (dict "root" $root "settings" $settings "labels" $labels) | nindent 2 }}
  containers:
    - name: {{ .component }}
      image: {{ include "interclear.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        {{- .args | nindent 8 }}
        {{- with $settings.extraArgs }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      env:
        {{- include "interclear.env" (dict "root" $root "instance" $instance "component" .component) | nindent 8 }}
        {{- with $settings.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: grpc
          containerPort: {{ $root.Values.ports.grpc }}
          protocol: TCP
        - name: health
          containerPort: {{ $root.Values.ports.health }}
          protocol: TCP
        {{- if $root.Values.metrics.enabled }}
        - name: metrics
          containerPort: {{ $root.Values.ports.metrics }}
          protocol: TCP
        {{- end }}
      # Startup and liveness ask whether the process is up ("liveness"); readiness asks whether
      # it can serve ("", NOT_SERVING while its database or a ledger stream is down), so an outage
      # of a dependency takes pods out of their Service without restarting them.
      startupProbe:
        grpc:
          port: {{ $root.Values.ports.health }}
          service: liveness
        periodSeconds: {{ $settings.probes.startup.periodSeconds }}
        failureThreshold: {{ $settings.probes.startup.failureThreshold }}
      readinessProbe:
        grpc:
          port: {{ $root.Values.ports.health }}
        periodSeconds: {{ $settings.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ $settings.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ $settings.probes.readiness.failureThreshold }}
      livenessProbe:
        grpc:
          port: {{ $root.Values.ports.health }}
          service: liveness
        periodSeconds: {{ $settings.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ $settings.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ $settings.probes.liveness.failureThreshold }}
      resources:
        {{- toYaml $instance.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.containerSecurityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if $root.Values.tls.enabled }}
        - name: tls
          mountPath: /etc/interclear/tls
          readOnly: true
        {{- end }}
        {{- if .configFile }}
        - name: config
          mountPath: /etc/interclear/{{ .configFile }}
          subPath: {{ .configFile }}
          readOnly: true
        {{- end }}
        {{- if $instance.receiverSecretName }}
        - name: receiver
          mountPath: /etc/interclear/receiver
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if $root.Values.tls.enabled }}
    - name: tls
      secret:
        secretName: {{ $instance.tlsSecretName }}
        defaultMode: 288 # 0440: read-only for the owner and fsGroup
    {{- end }}
    {{- if .configFile }}
    - name: config
      configMap:
        name: {{ $instance.name }}
    {{- end }}
    {{- if $instance.receiverSecretName }}
    - name: receiver
      secret:
        secretName: {{ $instance.receiverSecretName }}
        defaultMode: 288 # 0440: read-only for the owner and fsGroup
        items:
          - key: {{ $instance.receiverSecretKey }}
            path: secret
    {{- end }}
{{- end -}}

{{/*
Environment of every Interclear container: the database URL from its Secret, logs and tracing.
Arguments: root, instance, component.
*/}}
{{- define "interclear.env" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .instance.databaseSecretName }}
      key: {{ .instance.databaseSecretKey }}
{{ include "interclear.processEnv" (dict "root" .root "serviceName" (printf "interclear-%s-%s" .instance.participant .component)) }}
{{- end -}}

{{/*
Environment of every Interclear process besides its database: logs and tracing.
Arguments: root, serviceName (OTEL_SERVICE_NAME).
*/}}
{{- define "interclear.processEnv" -}}
- name: LOG_LEVEL
  value: {{ .root.Values.logLevel | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OTEL_SERVICE_NAME
  value: {{ .serviceName | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "service.namespace={{ .root.Release.Namespace }},k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(POD_NAME)"
{{- with .root.Values.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
A migration Job (Helm pre-install/pre-upgrade hook) for one instance.
Arguments: root, instance, component (ledger, connector or spsp).
*/}}
{{- define "interclear.migrateJob" -}}
{{- $root := .root -}}
{{- $labels := dict "root" $root "participant" .instance.participant "component" "migrate" -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .instance.name }}-migrate
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "interclear.labels" $labels | nindent 4 }}
    interclear.io/migrates: {{ .component }}
  annotations:
    # Before the new version's pods start, so they always find their schema up to date.
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "0"
    # A failed Job is kept for its logs until the next attempt replaces it.
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ $root.Values.migrations.backoffLimit }}
  activeDeadlineSeconds: {{ $root.Values.migrations.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "interclear.labels" $labels | nindent 8 }}
        interclear.io/migrates: {{ .component }}
    spec:
      restartPolicy: Never
      # The chart's ServiceAccount does not exist yet when a pre-install hook runs.
      {{- if and (not $root.Values.serviceAccount.create) $root.Values.serviceAccount.name }}
      serviceAccountName: {{ $root.Values.serviceAccount.name }}
      {{- end }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: migrate
          image: {{ include "interclear.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            - migrate
            - --kind={{ .component }}
          env:
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: {{ .instance.databaseSecretName }}
                  key: {{ .instance.databaseSecretKey }}
            - name: LOG_LEVEL
              value: {{ $root.Values.logLevel | quote }}
          resources:
            {{- toYaml $root.Values.migrations.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
{{- end -}}

{{/*
A Service for one instance. The Service of a service in a per-dfsp pod keeps its name and ports but
selects the DFSP's one pod and forwards to that service's own container ports there; as the pod
cannot carry three prometheus.io/port annotations, the Service carries its service's (when
metrics.scrapeAnnotations), for a Prometheus that discovers targets through Services.
Arguments: root, instance, component, settings.
*/}}
{{- define "interclear.service" -}}
{{- $root := .root -}}
{{- $labels := dict "root" $root "participant" .instance.participant "component" .component -}}
{{- $selector := $labels -}}
{{- $targets := dict "grpc" "grpc" "metrics" "metrics" -}}
{{- $annotations := .settings.service.annotations | default dict -}}
{{- if eq (.instance.layout | default "per-service") "per-dfsp" -}}
{{- $selector = dict "root" $root "participant" .instance.participant "component" "host" -}}
{{- $prefix := include "interclear.hostPortPrefix" .component -}}
{{- $targets = dict "grpc" (printf "%s-grpc" $prefix) "metrics" (printf "%s-metrics" $prefix) -}}
{{- if and $root.Values.metrics.enabled $root.Values.metrics.scrapeAnnotations -}}
{{- $ports := include "interclear.servicePorts" (dict "root" $root "layout" "per-dfsp" "component" .component) | fromJson -}}
{{- $annotations = merge (deepCopy $annotations) (dict "prometheus.io/scrape" "true" "prometheus.io/port" (toString (int $ports.metrics)) "prometheus.io/path" "/metrics") -}}
{{- end -}}
{{- end -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ .instance.name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "interclear.labels" $labels | nindent 4 }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .settings.service.type }}
  selector:
    {{- include "interclear.selectorLabels" $selector | nindent 4 }}
  ports:
    - name: grpc
      port: {{ $root.Values.ports.grpc }}
      targetPort: {{ $targets.grpc }}
      protocol: TCP
    {{- if $root.Values.metrics.enabled }}
    - name: metrics
      port: {{ $root.Values.ports.metrics }}
      targetPort: {{ $targets.metrics }}
      protocol: TCP
    {{- end }}
{{- end -}}

{{/*
A PodDisruptionBudget for one instance: maxUnavailable when set, else minAvailable when set, else
maxUnavailable 1 (minAvailable 1 on a single replica would block every node drain).
Arguments: root, instance, component, settings.
*/}}
{{- define "interclear.podDisruptionBudget" -}}
{{- $labels := dict "root" .root "participant" .instance.participant "component" .component -}}
{{- $budget := .settings.podDisruptionBudget -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .instance.name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "interclear.labels" $labels | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- include "interclear.selectorLabels" $labels | nindent 6 }}
  {{- if not (kindIs "invalid" $budget.maxUnavailable) }}
  maxUnavailable: {{ $budget.maxUnavailable }}
  {{- else if not (kindIs "invalid" $budget.minAvailable) }}
  minAvailable: {{ $budget.minAvailable }}
  {{- else }}
  maxUnavailable: 1
  {{- end }}
{{- end -}}

{{/*
A NetworkPolicy for one instance: gRPC from this release's pods and networkPolicy.grpcFrom,
metrics from networkPolicy.metricsFrom (any source when empty), and optionally restricted egress
(to this release's gRPC ports: ports.grpc, and the connector's and SPSP service's ports in
per-dfsp pods when there are any).
Arguments: root, instance, component; optionally grpcPorts and metricsPorts, the names of the
pod's gRPC and metrics ports (default "grpc" and "metrics"; a per-dfsp pod has three of each).
*/}}
{{- define "interclear.networkPolicy" -}}
{{- $root := .root -}}
{{- $labels := dict "root" $root "participant" .instance.participant "component" .component -}}
{{- $policy := $root.Values.networkPolicy -}}
{{- $grpcPorts := .grpcPorts | default (list "grpc") -}}
{{- $metricsPorts := .metricsPorts | default (list "metrics") -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .instance.name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "interclear.labels" $labels | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "interclear.selectorLabels" $labels | nindent 6 }}
  policyTypes:
    - Ingress
    {{- if $policy.egress.enabled }}
    - Egress
    {{- end }}
  ingress:
    - ports:
        {{- range $grpcPorts }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
      from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ include "interclear.name" $root }}
              app.kubernetes.io/instance: {{ $root.Release.Name }}
        {{- with $policy.grpcFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- if $root.Values.metrics.enabled }}
    - ports:
        {{- range $metricsPorts }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
      {{- with $policy.metricsFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
  {{- if $policy.egress.enabled }}
  egress:
    - ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    - to:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ include "interclear.name" $root }}
              app.kubernetes.io/instance: {{ $root.Release.Name }}
      ports:
        {{- range (include "interclear.releaseGrpcPorts" $root | fromJson).items }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
    {{- with $policy.egress.egressTo }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
{{- end -}}

{{/*
The container ports this release's pods serve gRPC on, as JSON {"items": [...]}: ports.grpc, and
the connector's and SPSP service's ports of host.ports when a per-dfsp pod runs them.
*/}}
{{- define "interclear.releaseGrpcPorts" -}}
{{- $ports := list .Values.ports.grpc -}}
{{- range $dfsp := .Values.dfsps -}}
{{- if eq (include "interclear.layout" $dfsp) "per-dfsp" -}}
{{- if (include "interclear.connectorAccounts" $dfsp | fromJson).enabled -}}
{{- $ports = append $ports $.Values.host.ports.connector.grpc -}}
{{- end -}}
{{- if ne ($dfsp.spsp | default dict).enabled false -}}
{{- $ports = append $ports $.Values.host.ports.spsp.grpc -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "items" ($ports | uniq)) -}}
{{- end -}}

{{/*
A cert-manager Certificate for one instance: its principal as common name, its Service names as
DNS names, usable as server and as client certificate (mutual TLS).
Arguments: root, instance, component.
*/}}
{{- define "interclear.certificate" -}}
{{- $root := .root -}}
{{- $manager := $root.Values.tls.certManager -}}
{{- $labels := dict "root" $root "participant" .instance.participant "component" .component -}}
{{- $namespace := $root.Release.Namespace -}}
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: {{ .instance.name }}
  namespace: {{ $namespace }}
  labels:
    {{- include "interclear.labels" $labels | nindent 4 }}
spec:
  secretName: {{ .instance.tlsSecretName }}
  secretTemplate:
    labels:
      {{- include "interclear.labels" $labels | nindent 6 }}
  commonName: {{ .instance.principal }}
  dnsNames:
    - {{ .instance.name }}
    - {{ .instance.name }}.{{ $namespace }}
    - {{ .instance.name }}.{{ $namespace }}.svc
    - {{ .instance.name }}.{{ $namespace }}.svc.{{ $root.Values.clusterDomain }}
  duration: {{ $manager.duration }}
  renewBefore: {{ $manager.renewBefore }}
  privateKey:
    algorithm: {{ $manager.privateKeyAlgorithm }}
    {{- if ne $manager.privateKeyAlgorithm "Ed25519" }}
    size: {{ $manager.privateKeySize }}
    {{- end }}
    encoding: PKCS8
    rotationPolicy: Always
  usages:
    - digital signature
    {{- if eq $manager.privateKeyAlgorithm "RSA" }}
    - key encipherment
    {{- end }}
    - server auth
    - client auth
  issuerRef:
    name: {{ required "tls.certManager.issuerRef.name is required when tls.certManager.enabled" $manager.issuerRef.name }}
    kind: {{ $manager.issuerRef.kind }}
    group: {{ $manager.issuerRef.group }}
{{- end -}}
