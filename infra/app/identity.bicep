// The one user-assigned identity of Fanout: the Function App, the Batch pools (agents on the nodes) and
// Application Insights ingestion all use it. Its roles are in rbac.bicep.
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
