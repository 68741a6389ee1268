/**
 * Validates rendered objects offline against the Kubernetes OpenAPI schemas (kubernetes-models)
 * and cert-manager's CRD schemas (@kubernetes-models/cert-manager): types, enums, formats and
 * required fields. Neither rejects unknown fields, so the chart tests also assert the shape of
 * what matters.
 */
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { Manifest } from './helm';

interface Validatable {
  validate(): void;
}

/** A validator for objects of one model class; the data is checked by validate(), not by the cast. */
function model<T>(Model: new (data: T) => Validatable): (data: Manifest) => Validatable {
  return (data) => new Model(data as unknown as T);
}

/**
 * Every kind the chart renders, by "apiVersion/kind". A kind missing here fails validation, so a
 * new template cannot skip it.
 */
const models: Record<string, (data: Manifest) => Validatable> = {
  'v1/ServiceAccount': model(ServiceAccount),
  'v1/Service': model(Service),
  'v1/ConfigMap': model(ConfigMap),
  'apps/v1/Deployment': model(Deployment),
  'batch/v1/Job': model(Job),
  'policy/v1/PodDisruptionBudget': model(PodDisruptionBudget),
  'networking.k8s.io/v1/NetworkPolicy': model(NetworkPolicy),
  'cert-manager.io/v1/Certificate': model(Certificate),
};

/** Kubernetes object names: DNS-1123 labels (Services, and so every instance resource). */
const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The problems found in `manifest`, empty when it is valid. */
export function validateManifest(manifest: Manifest): string[] {
  const where = `${manifest.kind}/${manifest.metadata?.name}`;
  const model = models[`${manifest.apiVersion}/${manifest.kind}`];
  if (!model) return [`${where}: no schema for ${manifest.apiVersion} ${manifest.kind}`];
  const problems: string[] = [];
  try {
    model(manifest).validate();
  } catch (error) {
    problems.push(`${where}: ${(error as Error).message}`);
  }
  const name = manifest.metadata?.name ?? '';
  if (!dnsLabel.test(name) || name.length > 63) problems.push(`${where}: name is not a DNS-1123 label`);
  return problems;
}
