// Fanout on Azure: storage, the Function App (Flex Consumption), Batch CPU/GPU pools, one identity.
// Deployed with `azd up` (see docs/deploy.md); the post-deploy hook (scripts/postdeploy.py) uploads the
// agent wheel and creates the Event Grid subscriptions of the blob triggers.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; part of every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource (the GPU VM size must be offered there).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the deploying user or service principal; gets blob write access to upload the agent wheel. Empty: none.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal'])
@description('Kind of principalId.')
param principalType string = 'User'

@description('Python version of the Function App (Flex Consumption).')
param pythonVersion string = '3.11'

@description('VM size of the CPU pool.')
param cpuVmSize string = 'Standard_D4s_v5'

@description('vCPUs of cpuVmSize (default workers per CPU node).')
param cpuCores int = 4

@description('Most nodes the CPU pool grows to.')
param cpuMaxNodes int = 4

@description('Create the GPU pool (needs GPU quota on the Batch account to grow beyond zero nodes).')
param gpuPoolEnabled bool = true

@description('VM size of the GPU pool.')
param gpuVmSize string = 'Standard_NC4as_T4_v3'

@description('GPUs of gpuVmSize (default workers per GPU node).')
param gpuCount int = 1

@description('vCPUs of gpuVmSize.')
param gpuCores int = 4

@description('Most nodes the GPU pool grows to.')
param gpuMaxNodes int = 2

@description('Use Spot nodes (cheaper, may be preempted; Fanout re-runs preempted agents harmlessly).')
param useSpot bool = false

@description('File name of the Fanout wheel the post-deploy hook uploads (its version must match pyproject.toml).')
param agentPackageName string = 'fanout-0.1.0-py3-none-any.whl'

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = 'func-fanout-${resourceToken}'
var deploymentContainerName = 'app-package-${take(resourceToken, 13)}'
var agentContainerName = 'agent'

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-fanout-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-fanout-${resourceToken}'
    applicationInsightsName: 'appi-fanout-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'stfanout${take(resourceToken, 13)}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    agentContainerName: agentContainerName
  }
}

module batch 'app/batch.bicep' = {
  name: 'batch'
  scope: rg
  params: {
    name: 'bafanout${take(resourceToken, 13)}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    cpuVmSize: cpuVmSize
    cpuCores: cpuCores
    cpuMaxNodes: cpuMaxNodes
    gpuPoolEnabled: gpuPoolEnabled
    gpuVmSize: gpuVmSize
    gpuCount: gpuCount
    gpuCores: gpuCores
    gpuMaxNodes: gpuMaxNodes
    useSpot: useSpot
  }
}

module function 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-fanout-${resourceToken}'
    location: location
    tags: tags
    pythonVersion: pythonVersion
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    batchEndpoint: batch.outputs.endpoint
    computeTargets: batch.outputs.computeTargets
    agentPackageUrl: '${storage.outputs.blobEndpoint}${agentContainerName}/${agentPackageName}'
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    batchAccountName: batch.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    principalId: principalId
    principalType: principalType
  }
}

// azd keeps these in the environment; the post-deploy hook and `fanout submit` read them.
output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = function.outputs.name
output AZURE_FUNCTION_APP_HOST string = function.outputs.defaultHostName
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_BATCH_ACCOUNT_NAME string = batch.outputs.name
output EVENTGRID_SYSTEM_TOPIC_NAME string = storage.outputs.systemTopicName
output AGENT_CONTAINER_NAME string = agentContainerName
output FANOUT_API_URL string = 'https://${function.outputs.defaultHostName}'
output FANOUT_AGENT_PACKAGE_URL string = '${storage.outputs.blobEndpoint}${agentContainerName}/${agentPackageName}'
output FANOUT_BATCH_ENDPOINT string = batch.outputs.endpoint
output FANOUT_COMPUTE_TARGETS string = string(batch.outputs.computeTargets)
