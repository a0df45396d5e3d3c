// VXLAN's BackendData, exactly as flannel writes it: {"VNI":1,"VtepMAC":"0e:.."}. A peer on
// another VNI cannot decapsulate our frames ('wrong-vni'); a bad MAC cannot be an FDB entry.
import { isJsonObject, jsonField, type NetworkConfig } from '../../config/network';
import { tryParseMac } from '../../ip/mac';
import type { BackendDataCodec } from '../../subnet/lease';

export interface VxlanData {
  vni: number;
  vtepMac: string;
}

const CANONICAL = /^\{"VNI":(0|[1-9][0-9]{0,9}),"VtepMAC":"([0-9a-f]{2}(?::[0-9a-f]{2}){5})"\}$/;

const configVni = (c: NetworkConfig): number | undefined => (c.backend.type === 'vxlan' ? c.backend.vni : undefined);

export const vxlanCodec: BackendDataCodec<VxlanData> = {
  type: 'vxlan',
  decode(raw, config) {
    const obj = isJsonObject(raw) ? raw : {};
    const macRaw = jsonField(obj, 'VtepMAC');
    const vtepMac = tryParseMac(macRaw);
    if (vtepMac === null) return { ok: false, reason: 'bad-mac', detail: `invalid BackendData.VtepMAC ${JSON.stringify(macRaw ?? null)}` };
    // flannel writes the VNI it runs with; a host on another VNI cannot decapsulate our frames.
    const vni = jsonField(obj, 'VNI');
    if (vni !== configVni(config)) return { ok: false, reason: 'wrong-vni', detail: `BackendData.VNI ${JSON.stringify(vni ?? null)}, network uses ${configVni(config)}` };
    return { ok: true, data: { vni: vni as number, vtepMac } };
  },
  decodeCanonical(text, config) {
    const m = text === undefined ? null : CANONICAL.exec(text);
    if (!m || Number(m[1]) !== configVni(config)) return null;
    const mac = m[2]!;
    // Already lowercase aa:bb:..: accepted here only when plainly unicast and not all zeros;
    // anything else is left to tryParseMac (the one authority) on the general path.
    if ((parseInt(mac[1]!, 16) & 1) !== 0 || mac === '00:00:00:00:00:00') return null;
    // A copy, not the match: a match is a slice that keeps the whole lease value alive, which
    // twilld otherwise does not keep (src/daemon/peer-state.ts). join() builds a flat string.
    return { vni: Number(m[1]), vtepMac: mac.split(':').join(':') };
  },
  encode: (d) => ({ VNI: d.vni, VtepMAC: d.vtepMac }),
  equals: (a, b) => a.vni === b.vni && a.vtepMac === b.vtepMac,
  describe: (d) => `vni ${d.vni}, ${d.vtepMac}`,
};
