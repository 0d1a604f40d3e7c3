// The Function App on the Flex Consumption plan: Python, identity-based storage for the host
// (AzureWebJobsStorage__*) and for Fanout (FANOUT_STORAGE_*), Application Insights with Entra ID,
// and every FANOUT_* setting the code reads (shared/settings.py; a test keeps them in step).
param name string
param planName string
param location string
param tags object = {}
param pythonVersion string
param identityId string
param identityClientId string
param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerName string
param applicationInsightsConnectionString string
param batchEndpoint string
param computeTargets object
param agentPackageUrl string
@description('Durable task hub (letters and digits); host.json reads it as %FANOUT_TASK_HUB%.')
param taskHub string = 'fanout'
param maximumInstanceCount int = 100
param instanceMemoryMB int = 2048

var appSettings = [
  // The Functions host's storage (triggers, Durable Functions), with the managed identity.
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
  { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
  { name: 'AzureWebJobsStorage__blobServiceUri', value: storageBlobEndpoint }
  { name: 'AzureWebJobsStorage__queueServiceUri', value: storageQueueEndpoint }
  { name: 'AzureWebJobsStorage__tableServiceUri', value: storageTableEndpoint }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: applicationInsightsConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
  // Fanout (shared/settings.py)
  { name: 'FANOUT_STORAGE_BLOB_URL', value: storageBlobEndpoint }
  { name: 'FANOUT_STORAGE_QUEUE_URL', value: storageQueueEndpoint }
  { name: 'FANOUT_STORAGE_TABLE_URL', value: storageTableEndpoint }
  { name: 'FANOUT_STORAGE_CLIENT_ID', value: identityClientId }
  { name: 'FANOUT_DEFAULT_DATASTORE', value: 'workspaceblobstore' }
  { name: 'FANOUT_HOME', value: '/tmp/fanout' }
  { name: 'FANOUT_EXECUTOR', value: 'batch' }
  { name: 'FANOUT_COMPUTE_TARGETS', value: string(computeTargets) }
  { name: 'FANOUT_BATCH_ENDPOINT', value: batchEndpoint }
  { name: 'FANOUT_BATCH_IDENTITY_RESOURCE_ID', value: identityId }
  { name: 'FANOUT_AGENT_PACKAGE_URL', value: agentPackageUrl }
  { name: 'FANOUT_BATCH_TASK_RETRIES', value: '2' }
  { name: 'FANOUT_SNAPSHOT_MAX_BYTES', value: '314572800' }
  { name: 'FANOUT_SNAPSHOT_MAX_FILES', value: '2000' }
  { name: 'FANOUT_TASK_HUB', value: taskHub }
  { name: 'FANOUT_STEP_POLL_SECONDS', value: '15' }
  { name: 'FANOUT_STEP_POLL_MAX_SECONDS', value: '120' }
  { name: 'FANOUT_OUTPUT_MD5_MAX_BYTES', value: '4294967296' }
  { name: 'FANOUT_TELEMETRY', value: 'azure_monitor' }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: appSettings
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
