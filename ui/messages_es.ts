/**
 * The UI's messages in Spanish, key for key as in `messages_en.ts`.
 *
 * @module
 */

import type { PhraseId } from "../core/api_types.ts";
import {
  keyed,
  type Message,
  type MessageKey,
  type UiKey,
} from "./messages_en.ts";

/** The UI's own words in Spanish. */
export const UI_ES: Readonly<Record<UiKey, Message>> = {
  "app.name": "Earthworm",
  "app.tagline": "latidos de los Lease",

  "status.healthy": "sano",
  "status.late": "retrasado",
  "status.expired": "caducado",
  "status.unknown": "desconocido",

  "count.healthy": { one: "sano", other: "sanos" },
  "count.late": { one: "retrasado", other: "retrasados" },
  "count.expired": { one: "caducado", other: "caducados" },
  "count.unknown": { one: "desconocido", other: "desconocidos" },

  "cause.kubelet": "kubelet",
  "cause.network": "red",
  "cause.apiserver": "servidor de API",
  "cause.observer": "vista de Earthworm",
  "cause.holder": "titular",
  "cause.handover": "relevo",
  "cause.unknown": "causa desconocida",

  "kind.node": "nodo",
  "kind.lease": "Lease de líder",

  "source.mock": "simulación",
  "source.replay": "reproducción",
  "source.cluster": "clúster",
  "source.simulated": "clúster simulado",
  "source.speed": "{speed} veces la velocidad real",

  "header.counts": "Corazones por estado",
  "header.count": {
    one: "{count} corazón {status}; mostrar solo estos",
    other: "{count} corazones {status}; mostrar solo estos",
  },
  "header.language": "Idioma",
  "conn.connecting": "conectando…",
  "conn.live": "en directo",
  "conn.reconnecting": "reconectando…",
  "conn.offline": "sin conexión — reintentando",
  "beep.on": "♪ pitido sí",
  "beep.off": "♪ pitido no",
  "beep.title": "Pitar con cada latido",

  "title.allHealthy": "todos sanos",
  "title.noHearts": "aún sin corazones",
  "title.worst": "{count} {status}",

  "banner.streamLost":
    "Sin noticias del servidor de Earthworm: {reason} — estados desconocidos hasta que vuelva",
  "banner.apiDown": "Servidor de API inalcanzable — corazones desconocidos",
  "banner.clusterApiDown":
    "El servidor de API de un clúster es inalcanzable — los corazones de ese clúster, desconocidos",
  "cluster.title": "clúster",
  "overview.cluster": "Clúster",
  "overview.allClusters": "todos los clústeres",
  "stream.lost": "flujo perdido hace {seconds} s",

  "overview.search": "Buscar nombre, espacio de nombres o titular",
  "overview.searchLabel": "Buscar corazones",
  "overview.namespace": "Espacio de nombres",
  "overview.kind": "Tipo",
  "overview.status": "Estado",
  "overview.allNamespaces": "todos los espacios de nombres",
  "overview.allKinds": "todos los tipos",
  "overview.nodeLeases": "Lease de nodo",
  "overview.otherLeases": "Lease de líder",
  "overview.anyStatus": "cualquier estado",
  "overview.hearts": { one: "{count} corazón", other: "{count} corazones" },
  "overview.heartsOf": {
    one: "{shown} de {count} corazón",
    other: "{shown} de {count} corazones",
  },
  "overview.noHearts":
    "Aún no hay corazones: esperando la primera instantánea.",
  "overview.noMatch": "Ningún corazón cumple este filtro.",

  "legend.sweep":
    "Barrido: {sweep} de izquierda a derecha, una línea de la cuadrícula cada {grid}; el punto brillante es ahora.",
  "legend.right": "A su derecha: el barrido anterior.",
  "legend.colours": "Colores:",
  "legend.ok": "a tiempo",
  "legend.late": "retrasado (más del doble del intervalo previsto)",
  "legend.expired": "caducado (más que la duración del Lease)",
  "legend.unknown": "desconocido (Earthworm no lo sabe)",

  "card.wire": "problemas de red",
  "card.wireDetail":
    "Problemas de red: {retransmits} retransmisiones, {resets} reinicios, último intercambio {latency}",
  "card.holder": "titular {holder}",
  "card.lastInterval": "intervalo {interval}",
  "card.expected": "previsto {interval}",
  "card.beats": { one: "{count} latido", other: "{count} latidos" },
  "card.silent": "en silencio {duration}",
  "card.stale": "({reason})",

  "cardiogram.label": "Cardiograma de {id}",

  "detail.back": "← todos los corazones",
  "detail.backHint": "Esc",
  "detail.waiting": "Esperando la primera instantánea…",
  "detail.missing": "No hay ningún corazón «{id}»: se borró o nunca existió.",
  "detail.holder": "titular {holder}",
  "detail.noHolder": "sin titular",
  "detail.since": "{status} desde las {time}: {summary}",
  "detail.lastInterval": "último intervalo",
  "detail.lastBeat": "último latido",
  "detail.silentFor": "en silencio",
  "detail.lag": "retraso de renovación",
  "detail.lagNote":
    "Retraso de renovación: cuánto después del renewTime del Lease vio Earthworm el latido, es decir, el desfase del reloj que renueva más la demora de entrega.",
  "detail.beatsFailed": "No se pueden cargar los latidos de «{id}»: {reason}",
  "detail.httpStatus":
    "el servidor respondió HTTP {status}; vuelva a cargar la página",
  "detail.unreachable":
    "no se puede contactar con el servidor; vuelva a cargar la página",

  "stat.beats": "latidos",
  "stat.intervals": "intervalos",
  "stat.min": "mín.",
  "stat.median": "mediana",
  "stat.p95": "p. 95",
  "stat.max": "máx.",
  "stat.expected": "previsto",
  "stat.leaseDuration": "duración del Lease",
  "stat.transitions": "traspasos",

  "why.title": "Por qué:",
  "history.title": "Historial de latidos",
  "history.loading": "cargando…",
  "history.label": "Intervalos entre latidos de {id}",
  "history.interval": "intervalo",
  "history.sinceLast": "desde el último latido",
  "history.expected": "previsto",
  "history.lateAfter": "retrasado a partir de",
  "history.leaseDuration": "duración del Lease",
  "history.axis": "intervalo (s)",
  "history.gaps": {
    one: "{count} hueco sin latidos queda en blanco.",
    other: "{count} huecos sin latidos quedan en blanco.",
  },

  "transitions.title": "Traspasos",
  "transitions.none": "No se ha visto ningún cambio de titular.",
  "transitions.noneHeld":
    "No se ha visto ningún cambio de titular: lo tiene {holder}.",
  "transitions.unknownHolder": "¿?",

  "episodes.title": "Episodios",
  "episodes.none": "Nunca retrasado ni caducado mientras Earthworm miraba.",
  "episodes.now": "ahora",

  "recent.title": "Últimos latidos",
  "recent.observed": "visto",
  "recent.interval": "intervalo",
  "recent.wire": "red",
  "recent.holder": "titular",
  "recent.exact": "exacto",
  "recent.inferred": "deducido",
  "recent.exactTitle":
    "La petición y la respuesta de esta misma renovación en la red",
  "recent.inferredTitle":
    "Deducido de los tiempos TCP: no se pudo trazar la capa TLS del kubelet",

  "wire.title": "Traza de red",
  "wire.label": "Latencia de red de {node}",
  "wire.exact": "latencia de renovación (exacta)",
  "wire.inferred": "latencia de intercambio (deducida)",
  "wire.rtt": "RTT suavizado",
  "wire.axis": "ms",
  "wire.nodeOnly":
    "Los datos de red solo se registran para los Lease de nodo: la sonda eBPF observa los kubelets.",
  "wire.none": "Sin datos de red: {reason}.",
  "wire.notRunning": "la sonda eBPF no está en marcha",
  "wire.noneYet": "Aún no se ha informado de intercambios de red de este nodo.",
  "wire.summary": {
    one:
      "{count} intercambio ({exact} renovaciones identificadas exactamente) · último {latency} en {conn} · RTT {rtt} · {retransmits} retransmisiones · {resets} reinicios",
    other:
      "{count} intercambios ({exact} renovaciones identificadas exactamente) · último {latency} en {conn} · RTT {rtt} · {retransmits} retransmisiones · {resets} reinicios",
  },

  "time.never": "nunca",
  "time.ago": "hace {duration}",

  "null.nobody": "nadie",
  "null.none": "ninguno",
  "null.holder": "el titular",
  "null.reason": "motivo desconocido",
};

/** The server's sentences in Spanish, by phrase id. */
export const PHRASES_ES: Readonly<Record<PhraseId, Message>> = {
  "network.retransmitted": {
    one:
      "las peticiones del kubelet se retransmitieron {count} vez desde las {sinceAt}",
    other:
      "las peticiones del kubelet se retransmitieron {count} veces desde las {sinceAt}",
  },
  "network.reset":
    "las peticiones del kubelet se reiniciaron desde las {sinceAt}",
  "network.rttJump":
    "las peticiones del kubelet se ralentizaron por un salto del RTT desde las {sinceAt}",
  "apiserver.waiting":
    "la renovación que el kubelet envió a las {sentAt} lleva {waitMs} esperando respuesta",
  "apiserver.failed":
    "el servidor de API respondió a la renovación del kubelet con HTTP {status}",
  "apiserver.slow":
    "el servidor de API tardó {latencyMs} en responder a la renovación del kubelet",
  "apiserver.unwatched":
    "el servidor de API aceptó la renovación del kubelet a las {acceptedAt} pero su watch no la ha entregado",
  "observer.blind": "Earthworm no ve el servidor de API: no se culpa a nadie",
  "observer.onlyEarthworm":
    "solo Earthworm no ve el servidor de API: las renovaciones de los kubelets reciben respuesta",
  "kubelet.noRenewal": "el kubelet no envió ninguna renovación en {silentMs}",
  "unknown.noWire":
    "ninguna renovación en {silentMs}; no hay datos de red de este nodo",
  "unknown.inferred":
    "ninguna renovación en {silentMs}; la red no permite saber por qué",
  "handover.moved":
    "el liderazgo pasó de {from} a {to} tras {silentMs} sin renovaciones",
  "holder.silent": "{holder} no ha renovado en {silentMs}",
  "source.waiting":
    "el servidor de API no responde a nadie: {node}: la renovación que el kubelet envió a las {sentAt} lleva {waitMs} esperando respuesta",
  "source.failed":
    "el servidor de API no responde a nadie: {node}: respondió a la renovación del kubelet con HTTP {status}",
  "source.slow":
    "el servidor de API no responde a nadie: {node}: tardó {latencyMs} en responder a la renovación del kubelet",
  "evidence.retransmits": {
    one: "{count} retransmisión en la conexión {conn} del kubelet",
    other: "{count} retransmisiones en la conexión {conn} del kubelet",
  },
  "evidence.resets": {
    one: "{count} reinicio de {conn}",
    other: "{count} reinicios de {conn}",
  },
  "evidence.closed": "conexión {conn} cerrada",
  "evidence.rttJump": "el RTT saltó a {rttMs} desde {baselineMs}",
  "evidence.pending":
    "renovación de {lease} enviada, sin respuesta desde hace {waitMs}",
  "evidence.failed": "renovación respondida con HTTP {status} tras {latencyMs}",
  "evidence.slow": "renovación respondida tras {latencyMs}",
  "evidence.unwatched":
    "renovación respondida con HTTP {status} en {latencyMs}, ningún evento del watch desde entonces",
  "evidence.lostSight": "Earthworm perdió la vista: {reason}",
  "evidence.noAgent":
    "ningún agente de Earthworm informa de datos de red de este nodo",
  "evidence.probeDown": "la sonda eBPF del nodo no funciona: {reason}",
  "evidence.noRequest": {
    one:
      "ninguna petición de Lease salió de {node} desde su último latido (salió {count} petición de otro tipo)",
    other:
      "ninguna petición de Lease salió de {node} desde su último latido (salieron {count} peticiones de otro tipo)",
  },
  "evidence.noRequestIdle":
    "ninguna petición de Lease salió de {node} desde su último latido; su conexión está inactiva",
  "evidence.inferred":
    "las renovaciones se deducen de los tiempos TCP en {node}: un kubelet bloqueado y una petición sin respuesta se parecen; el emparejamiento exacto los distingue (README, «Exact pairing»)",
  "evidence.inferredBecause":
    "las renovaciones se deducen de los tiempos TCP en {node} ({reason}): un kubelet bloqueado y una petición sin respuesta se parecen; el emparejamiento exacto los distingue (README, «Exact pairing»)",
  "evidence.holderChanged": "el titular pasó de {from} a {to}",
  "evidence.lastRenewed": "{holder} renovó por última vez hace {silentMs}",
  "evidence.lastRenewedUsual":
    "{holder} renovó por última vez hace {silentMs}; renovaba cada {usualMs}",
  "evidence.lateAlready":
    "su última renovación ya llegó tarde ({lastMs} después de la anterior)",
  "evidence.answered":
    "mientras tanto, la renovación de {node} recibió respuesta en {latencyMs}",
  "wire.leaseOnly":
    "{count} de {total} agentes funcionan solo con Leases; {node}: {reason}",
  "wire.noAgent": "ningún agente ha informado aún de datos de red",
  "wire.offCluster":
    "earthworm watch funciona fuera del clúster: los datos de red vienen de los agentes del clúster",
  "wire.replay": "una reproducción de Leases grabados no tiene datos de red",
  "wire.pairing":
    "renovaciones identificadas exactamente en {exact} de {count} nodos",
  "wire.pairingInferred":
    "renovaciones identificadas exactamente en {exact} de {count} nodos; deducidas de los tiempos TCP en {node}: {reason}",
  "wire.pairingInferredMore":
    "renovaciones identificadas exactamente en {exact} de {count} nodos; deducidas de los tiempos TCP en {node} y {more} más: {reason}",
};

/** The Spanish catalogue. */
export const MESSAGES_ES: Readonly<Record<MessageKey, Message>> = keyed(
  UI_ES,
  PHRASES_ES,
);
