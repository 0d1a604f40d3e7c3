// Fanout's storage account: everything a run reads and writes, the Functions host's own state, the
// agent wheel and the Function App's deployment package. Shared keys are disabled: every caller (the
// Function App, the agents on Batch nodes, the deploying user) uses Entra ID.
// The names below are the ones in shared/storage.py (a test keeps them in step).
param name string
param location string
param tags object = {}
param deploymentContainerName string
param agentContainerName string

// shared/storage.py: Container
var containerNames = [
  'snapshots'
  'specs'
  'data'
  'runs'
  'registry'
]
// shared/storage.py: queues shared by every run (per-step work queues are created at run time)
var queueNames = [
  'fanout-events'
]
// shared/storage.py: Table
var tableNames = [
  'fanoutruns'
  'fanoutminibatches'
  'fanouttallies'
  'fanoutreceipts'
  'fanoutreuse'
]
var infrastructureContainers = [
  deploymentContainerName
  agentContainerName
]

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in concat(containerNames, infrastructureContainers): {
  parent: blobService
  name: container
  properties: {
    publicAccess: 'None'
  }
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queue in queueNames: {
  parent: queueService
  name: queue
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for table in tableNames: {
  parent: tableService
  name: table
}]

// Blob-created events for the blob triggers (Flex Consumption fires blob triggers only through Event
// Grid). The subscriptions are created by the post-deploy hook, once the code can answer the webhook
// validation.
resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: 'evgt-${name}'
  location: location
  tags: tags
  properties: {
    source: account.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
output systemTopicName string = systemTopic.name
