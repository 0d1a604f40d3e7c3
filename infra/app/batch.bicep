// The Batch account and its two pools. Both pools scale on pending tasks from zero nodes (one node per
// agent task: a task takes all of a node's slots), run tasks in containers (Docker with the NVIDIA
// runtime on the ubuntu-hpc image), and give their nodes the Fanout identity, which agents use for
// storage and to download the agent wheel. Entra ID only: shared-key access to the account is off.
param name string
param location string
param tags object = {}
param identityId string
param cpuVmSize string
param cpuCores int
param cpuMaxNodes int
param gpuPoolEnabled bool
param gpuVmSize string
param gpuCount int
param gpuCores int
param gpuMaxNodes int
param useSpot bool

// Image agent tasks run in when a job's environment names none (needs Python 3.11+); prefetched.
var defaultImage = 'mcr.microsoft.com/mirror/docker/library/python:3.11-slim'
var taskSlotsPerNode = 1
var nodeImage = {
  publisher: 'microsoft-dsvm'
  offer: 'ubuntu-hpc'
  sku: '2404'
  version: 'latest'
}
var nodeAgentSkuId = 'batch.node.ubuntu 24.04'
var dedicatedNodes = useSpot ? '0' : '$nodes'
var spotNodes = useSpot ? '$nodes' : '0'
// Pending tasks (active + running) over the last 5 minutes; each task needs a whole node.
var formulaHead = [
  '$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 5);'
  '$tasks = $samples < 70 ? max(0, $PendingTasks.GetSample(1)) : max($PendingTasks.GetSample(1), avg($PendingTasks.GetSample(TimeInterval_Minute * 5)));'
]
var formulaTail = [
  '$TargetDedicatedNodes = ${dedicatedNodes};'
  '$TargetLowPriorityNodes = ${spotNodes};'
  '$NodeDeallocationOption = taskcompletion;'
]
var cpuFormula = join(concat(formulaHead, ['$nodes = min(${cpuMaxNodes}, $tasks);'], formulaTail), '\n')
var gpuFormula = join(concat(formulaHead, ['$nodes = min(${gpuMaxNodes}, $tasks);'], formulaTail), '\n')
var poolIdentity = {
  type: 'UserAssigned'
  userAssignedIdentities: {
    '${identityId}': {}
  }
}

resource account 'Microsoft.Batch/batchAccounts@2024-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    poolAllocationMode: 'BatchService'
    allowedAuthenticationModes: [
      'AAD'
    ]
    publicNetworkAccess: 'Enabled'
  }
}

resource cpuPool 'Microsoft.Batch/batchAccounts/pools@2024-07-01' = {
  parent: account
  name: 'fanout-cpu'
  identity: poolIdentity
  properties: {
    vmSize: cpuVmSize
    taskSlotsPerNode: taskSlotsPerNode
    interNodeCommunication: 'Disabled'
    targetNodeCommunicationMode: 'Simplified'
    deploymentConfiguration: {
      virtualMachineConfiguration: {
        imageReference: nodeImage
        nodeAgentSkuId: nodeAgentSkuId
        containerConfiguration: {
          type: 'DockerCompatible'
          containerImageNames: [
            defaultImage
          ]
        }
      }
    }
    scaleSettings: {
      autoScale: {
        formula: cpuFormula
        evaluationInterval: 'PT5M'
      }
    }
  }
}

resource gpuPool 'Microsoft.Batch/batchAccounts/pools@2024-07-01' = if (gpuPoolEnabled) {
  parent: account
  name: 'fanout-gpu'
  identity: poolIdentity
  properties: {
    vmSize: gpuVmSize
    taskSlotsPerNode: taskSlotsPerNode
    interNodeCommunication: 'Disabled'
    targetNodeCommunicationMode: 'Simplified'
    deploymentConfiguration: {
      virtualMachineConfiguration: {
        imageReference: nodeImage
        nodeAgentSkuId: nodeAgentSkuId
        containerConfiguration: {
          type: 'DockerCompatible'
          containerImageNames: [
            defaultImage
          ]
        }
      }
    }
    scaleSettings: {
      autoScale: {
        formula: gpuFormula
        evaluationInterval: 'PT5M'
      }
    }
  }
}

// FANOUT_COMPUTE_TARGETS: the compute names a spec may use (shared/settings.py ComputeTarget).
var cpuTarget = {
  pool_id: cpuPool.name
  kind: 'cpu'
  vm_size: cpuVmSize
  cores: cpuCores
  gpus: 0
  task_slots: taskSlotsPerNode
  containers: true
  image: defaultImage
}
var gpuTarget = {
  pool_id: 'fanout-gpu'
  kind: 'gpu'
  vm_size: gpuVmSize
  cores: gpuCores
  gpus: gpuCount
  task_slots: taskSlotsPerNode
  containers: true
  image: defaultImage
}
var cpuTargets = {
  default: cpuTarget
  'cpu-cluster': cpuTarget
}
var gpuTargets = {
  'gpu-cluster': gpuTarget
}

output name string = account.name
output endpoint string = 'https://${account.properties.accountEndpoint}'
output computeTargets object = union(cpuTargets, gpuPoolEnabled ? gpuTargets : {})
